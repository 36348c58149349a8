"""Delta errors: one line each, like every ArtifactError."""

from __future__ import annotations

from ..errors import FormatError


class DeltaError(FormatError):
    """The delta is corrupt, truncated or lies about sizes, or the base cannot be read
    while the image is being written."""


class DeltaBaseMismatch(DeltaError):
    """The base slot is not the delta's OLD image; nothing was written."""

    exit_code = 6


class DeltaBaseUnreadable(DeltaBaseMismatch):
    """The base slot cannot be read while it is checked (an I/O error): as unusable as a
    modified one, and found as early (nothing written), so the full artifact installs."""
