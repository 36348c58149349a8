"""`manifest` and `manifest-augment`: sha256sum-style lines (docs/artifact-format.md#manifest)."""

from __future__ import annotations

import re

from ..errors import FormatError

_LINE = re.compile(rb"^([0-9a-f]{64})  (\S+)$")
_DATA_PATH = re.compile(r"^data/[0-9]{4}/[\w\-.,]+$")
MAX_MANIFEST = 1 << 20


def parse_manifest(data: bytes, member: str = "manifest") -> dict[str, str]:
    """Map path -> hex sha256. Every line must end in a newline, paths are unique."""
    if len(data) > MAX_MANIFEST:
        raise FormatError(f"{member}: {len(data)} bytes is larger than the {MAX_MANIFEST} allowed")
    if not data:
        raise FormatError(f"{member}: empty")
    if not data.endswith(b"\n"):
        raise FormatError(f"{member}: last line is not terminated by a newline")
    entries: dict[str, str] = {}
    for number, line in enumerate(data[:-1].split(b"\n"), 1):
        match = _LINE.match(line)
        if match is None:
            raise FormatError(f"{member}: line {number} is not '<sha256>  <path>'")
        path = match.group(2).decode("utf-8", "replace")
        if path in entries:
            raise FormatError(f"{member}: duplicate entry for {path}")
        if path.startswith("data/") and not _DATA_PATH.match(path):
            raise FormatError(f"{member}: invalid payload path {path}")
        entries[path] = match.group(1).decode()
    return entries


def render_manifest(entries: list[tuple[str, str]]) -> bytes:
    """Lines in the given order (mender-artifact: data files, header, version)."""
    return b"".join(f"{digest}  {path}\n".encode() for path, digest in entries)
