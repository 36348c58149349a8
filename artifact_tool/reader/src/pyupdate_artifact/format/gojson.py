"""JSON bytes as Go's encoding/json writes them, so our headers match mender-artifact's."""

from __future__ import annotations

import json
import re

# Limits of every JSON document in an artifact (docs/artifact-format.md#limits).
# Python's json parser recurses once per nesting level, so depth is checked by a
# scan of the brackets before parsing; real headers nest 3 levels, meta-data a few.
MAX_JSON = 1 << 20
MAX_JSON_DEPTH = 32

# a JSON string (escapes included) or one bracket; strings are skipped whole
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)

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


def json_depth(data: bytes, stop: int = MAX_JSON_DEPTH + 1) -> int:
    """How deep the brackets of `data` nest outside strings, counting no further than `stop`."""
    depth = deepest = 0
    for token in _TOKEN.finditer(data):
        char = token.group()
        if char in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest >= stop:
                    break
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


def check_limits(data: bytes, member: str) -> None:
    """Refuse JSON over MAX_JSON bytes or MAX_JSON_DEPTH levels, before it is parsed."""
    from ..errors import FormatError

    if len(data) > MAX_JSON:
        raise FormatError(f"{member}: JSON of {len(data)} bytes, more than {MAX_JSON}")
    if json_depth(data) > MAX_JSON_DEPTH:
        raise FormatError(f"{member}: JSON nests deeper than {MAX_JSON_DEPTH} levels")


def loads_limited(data: bytes, member: str) -> object:
    """Decode JSON within the limits, or raise the member's one-line FormatError."""
    from ..errors import FormatError

    check_limits(data, member)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"{member}: invalid JSON ({err})") from None
    except RecursionError:  # a smaller stack than the depth limit assumes
        raise FormatError(f"{member}: JSON nests too deep") from None


def loads_object(data: bytes, member: str) -> dict:
    """Decode a JSON object or raise the member's one-line FormatError."""
    from ..errors import FormatError

    doc = loads_limited(data, member)
    if not isinstance(doc, dict):
        raise FormatError(f"{member}: expected a JSON object")
    return doc
