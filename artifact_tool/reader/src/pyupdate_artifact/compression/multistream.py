"""Bounded reads from concatenated compressed members (gzip members, xz streams).

Shared by the gzip and xz readers: both formats let a writer append members,
and readers (gunzip, xz, Go's multistream readers, mender-artifact) take them
as one stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..errors import FormatError
from ..tarsafe import ByteSource

RAW_CHUNK = 1 << 18


class Decompressor(Protocol):
    """What zlib's, isal's and lzma's decompress objects have in common."""

    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


class MultiStreamReader:
    """ByteSource of the decompressed data; each read returns at most `size` bytes.

    Output per read is capped so that a highly compressed run (a GiB of zeros)
    never lands in memory at once. Anything after a member that does not start
    a new member (`magic`) is an error, as in Go's multistream readers.

    Args: raw (compressed bytes), new (a fresh decompressor for each member),
    magic (first bytes of a member), where (member name for errors),
    keeps_input (lzma's objects keep unconsumed input themselves; zlib's hand
    it back in `unconsumed_tail`).
    """

    def __init__(
        self,
        raw: ByteSource,
        new: Callable[[], Decompressor],
        magic: bytes,
        where: str,
        *,
        keeps_input: bool = False,
    ) -> None:
        self._raw = raw
        self._new = new
        self._magic = magic
        self._where = where
        self._keeps_input = keeps_input
        self._obj = new()
        self._buf = b""
        self._started = False

    def read(self, size: int, /) -> bytes:
        while True:
            obj = self._obj
            if obj.eof:
                leftover = obj.unused_data + self._buf
                self._buf = b""
                if not leftover:
                    leftover = self._raw.read(RAW_CHUNK)
                if not leftover:
                    return b""
                if not leftover.startswith(self._magic[: len(leftover)]):
                    raise FormatError(f"{self._where}: trailing garbage after compressed data")
                self._obj = self._new()
                self._buf = leftover
                continue
            if self._keeps_input and not obj.needs_input:  # type: ignore[attr-defined]
                data = b""
            else:
                data = self._buf or self._raw.read(RAW_CHUNK)
                self._buf = b""
                if not data:
                    what = "truncated" if self._started else "empty"
                    raise FormatError(f"{self._where}: compressed stream is {what}")
            self._started = True
            try:
                out = obj.decompress(data, size)
            except Exception as err:  # zlib.error, LZMAError, isal's IsalError: no common base
                raise FormatError(f"{self._where}: corrupt compressed data ({err})") from None
            if not self._keeps_input:
                # At a member's end the rest of the input is in unused_data; CPython's
                # zlib (seen on 3.11) leaves a copy in unconsumed_tail too when the call
                # began from the tail, and taking both would read those bytes twice.
                self._buf = b"" if obj.eof else obj.unconsumed_tail  # type: ignore[attr-defined]
            if out:
                return out
