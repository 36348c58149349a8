"""Delta errors: one line each, like every ArtifactError."""

from __future__ import annotations

from ..errors import ArtifactError


class DeltaError(ArtifactError):
    """The delta is corrupt, truncated or lies about sizes, or the base cannot be read."""

    exit_code = 4


class DeltaBaseMismatch(DeltaError):
    """The base slot is not the delta's OLD image; nothing was written."""

    exit_code = 6
