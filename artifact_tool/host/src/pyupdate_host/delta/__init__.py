"""Delta generation (build host or server): OLD and NEW rootfs images to a delta file.

Format: docs/delta-format.md. The device applies it with pyupdate_artifact.delta.
"""

from __future__ import annotations

from .artifact import DeltaNotSmaller, DeltaResult, make_delta
from .encode import EncodeStats, encode_images

__all__ = ["DeltaNotSmaller", "DeltaResult", "EncodeStats", "encode_images", "make_delta"]
