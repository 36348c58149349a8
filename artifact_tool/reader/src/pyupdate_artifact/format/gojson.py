"""JSON bytes as Go's encoding/json writes them, so our headers match mender-artifact's."""

from __future__ import annotations

import json

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_json(value: object, sort_keys: bool = False) -> bytes:
    """Compact JSON with Go's HTML-safe escaping; dict order kept unless sort_keys."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    for char, escaped in _GO_ESCAPES.items():
        if char in text:
            text = text.replace(char, escaped)
    return text.encode()


def loads_object(data: bytes, member: str) -> dict:
    """Decode a JSON object or raise the member's one-line FormatError."""
    from ..errors import FormatError

    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"{member}: invalid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise FormatError(f"{member}: expected a JSON object")
    return doc
