"""Text from an artifact, safe to print: control characters escaped.

Names, device types, provides and script names come from whoever wrote the
artifact. Printed raw, an escape sequence in one of them would drive the
reader's terminal (retitle it, hide lines, fake an answer), so everything the
CLIs print from an artifact goes through `printable()`. The JSON outputs are
safe already: `json.dumps` escapes control characters itself.
Documented in docs/artifact-tool.md ("read, validate, sign") and docs/agent.md.
"""

from __future__ import annotations

import unicodedata

# control (C0, DEL, C1), format (bidi overrides, zero-width), line and paragraph
# separators, lone surrogates (from undecodable bytes)
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` with each control or format character written as `\\x1b`, `\\u202e`..."""
    if text.isprintable():
        return text
    return "".join(
        _escape(char) if unicodedata.category(char) in _UNSAFE else char for char in text
    )
