"""Errors of the artifact library: one class per kind of failure, one line each.

Only the CLI entry point catches them; `exit_code` is what it exits with
(documented in docs/artifact-tool.md). 1 is reserved for bugs.
"""

from __future__ import annotations


class ArtifactError(Exception):
    """Base class: str(err) is the one line shown to the user."""

    exit_code = 2


class UsageError(ArtifactError):
    """A wrong or missing command-line option."""

    exit_code = 2


class InputError(ArtifactError):
    """An input file (image, key, script, meta-data) is missing or unreadable."""

    exit_code = 3


class FormatError(ArtifactError):
    """The artifact breaks the v3 format: order, names, JSON, sizes, truncation."""

    exit_code = 4


class ChecksumError(FormatError):
    """A member or payload file does not match its manifest line."""


class SignatureError(ArtifactError):
    """The signature is missing when required, malformed, or does not verify."""

    exit_code = 5


class KeyFileError(ArtifactError):
    """A key file cannot be used (unsupported type, size or encoding)."""

    exit_code = 3


class CompatibilityError(ArtifactError):
    """The artifact does not fit the device: device type or depends."""

    exit_code = 6


class OutputError(ArtifactError):
    """The output file cannot be written."""

    exit_code = 3
