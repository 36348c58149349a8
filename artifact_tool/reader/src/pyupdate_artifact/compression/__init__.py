"""The compressor registry: every compression pyupdate knows, by CLI id and by member suffix.

One module per compressor, each with the same three functions: `open_reader`
(decompressed view of a member), `open_encoder` (streaming compressor for the
payload) and `compress_small` (whole-buffer compressor for the header). The
reader, the writer and the CLI look compressors up here and nowhere else, so
a new one is a module and a row in `COMPRESSIONS` (docs/artifact-library.md#compressors).

Importing this package loads only the stdlib: optional backends (isal,
libdeflate, zstandard) are imported on first use, since the agent reads
artifacts on devices that have none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

from ..errors import FormatError, UsageError
from ..tarsafe import ByteSource
from . import gzip, none, xz, zstd

Out = Callable[[bytes], None]


class Encoder(Protocol):
    block: int  # input arrives in pieces that end on this grid

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Compression:
    """One row of the registry.

    Args:
        id: the name on the command line and in `read --json` (mender-artifact's).
        suffix: what follows `header.tar` and `data/NNNN.tar` in member names.
        open_reader: (compressed source, member name for errors) -> ByteSource whose
            reads return at most the size asked for.
        open_encoder: (out, level or None for the default) -> Encoder.
        compress_small: whole-buffer compression, for the header (a few KiB).
    """

    id: str
    suffix: str
    open_reader: Callable[[ByteSource, str], ByteSource]
    open_encoder: Callable[[Out, int | None], Encoder]
    compress_small: Callable[[bytes], bytes]


def _row(name: str, suffix: str, module: ModuleType) -> Compression:
    return Compression(name, suffix, module.open_reader, module.open_encoder, module.compress_small)


COMPRESSIONS: dict[str, Compression] = {
    row.id: row
    for row in (
        _row("none", "", none),
        _row("gzip", ".gz", gzip),
        _row("lzma", ".xz", xz),
        _row("zstd", ".zst", zstd),
    )
}
DEFAULT = "gzip"  # mender-artifact's default
_BY_SUFFIX = {c.suffix: c for c in COMPRESSIONS.values()}


def by_id(name: str) -> Compression:
    try:
        return COMPRESSIONS[name]
    except KeyError:
        known = "|".join(COMPRESSIONS)
        raise UsageError(f"unknown compression {name!r} (use {known})") from None


def by_member(member: str, base: str) -> Compression:
    """`header.tar.gz` with base `header.tar` -> gzip; unknown suffix is a FormatError."""
    suffix = member[len(base) :]
    try:
        return _BY_SUFFIX[suffix]
    except KeyError:
        raise FormatError(f"{member}: unknown compression suffix {suffix!r}") from None


def suffixes() -> str:
    """`.gz|.xz|.zst`: the suffixes a compressed member may carry, for error messages."""
    return "|".join(c.suffix for c in COMPRESSIONS.values() if c.suffix)


def cli_help() -> str:
    """`none, gzip (default), lzma or zstd` for `write --compression`."""
    names = [f"{c} (default)" if c == DEFAULT else c for c in COMPRESSIONS]
    return ", ".join(names[:-1]) + " or " + names[-1]
