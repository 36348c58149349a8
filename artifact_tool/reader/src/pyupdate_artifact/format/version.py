"""The `version` member (docs/artifact-format.md#version)."""

from __future__ import annotations

import json

from ..errors import FormatError
from .gojson import check_limits

# mender-artifact writes exactly these 31 bytes; its sha256 is constant for v3.
VERSION_BYTES = b'{"format":"mender","version":3}'
SUPPORTED_VERSIONS = (3,)


def parse_version(data: bytes) -> int:
    """Return the format version, refusing anything but a v3 Mender artifact."""
    check_limits(data, "version")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise FormatError("version: not valid JSON") from None
    if not isinstance(doc, dict) or set(doc) != {"format", "version"}:
        raise FormatError('version: expected exactly the keys "format" and "version"')
    if doc["format"] != "mender":
        raise FormatError(f"version: unknown format {doc['format']!r}")
    version = doc["version"]
    # type(...) is int: Go decodes into an int field, so 3.0 and true are refused there too
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise FormatError(f"version: unsupported artifact format version {version!r} (only 3)")
    return int(version)
