"""Binary delta of a rootfs image: the device-side applier (docs/delta-format.md).

Stdlib only (hashlib, lzma, struct): it runs on the device, reading the base
image from the active slot and streaming the new image to the inactive one.
"""

from __future__ import annotations

from .applier import DeltaApplier
from .errors import DeltaBaseMismatch, DeltaBaseUnreadable, DeltaError
from .format import DELTA_FILE, DELTA_TYPE

__all__ = [
    "DELTA_FILE",
    "DELTA_TYPE",
    "DeltaApplier",
    "DeltaBaseMismatch",
    "DeltaBaseUnreadable",
    "DeltaError",
]
