"""Pulls exact byte counts out of one .xz stream of a segment, with a memory limit."""

from __future__ import annotations

import lzma

from .errors import DeltaError

_FEED = 64 << 10  # compressed bytes handed to the decoder at once: it copies what it keeps


class StreamPuller:
    def __init__(self, data: memoryview, raw_len: int, memlimit: int, where: str) -> None:
        self._where = where
        self._left = raw_len
        self._data = data
        self._pos = 0
        self._dec = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=memlimit)
        if not raw_len and len(data):
            raise DeltaError(f"{where}: compressed bytes for an empty stream")

    def _pull(self, want: int) -> bytes:
        data: bytes | memoryview = b""
        if self._dec.needs_input:
            data = self._data[self._pos : self._pos + _FEED]
            self._pos += len(data)
        return self._dec.decompress(data, max_length=want)

    def read(self, size: int) -> bytes:
        """Exactly `size` bytes, or a DeltaError when the stream holds fewer."""
        if size > self._left:
            raise DeltaError(f"{self._where}: an op needs more bytes than the stream holds")
        if not size:
            return b""
        parts: list[bytes] = []
        want = size
        while want:
            if self._dec.eof:
                raise DeltaError(f"{self._where}: ends early")
            if self._dec.needs_input and self._pos >= len(self._data):
                raise DeltaError(f"{self._where}: truncated")
            piece = self._pull(want)
            if piece:
                parts.append(piece)
                want -= len(piece)
        self._left -= size
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def check_consumed(self) -> None:
        """Every byte was used and the .xz stream ends exactly where the segment says."""
        if self._left:
            raise DeltaError(f"{self._where}: {self._left} bytes left unused")
        if not len(self._data):
            return
        while not self._dec.eof:
            if self._dec.needs_input and self._pos >= len(self._data):
                raise DeltaError(f"{self._where}: truncated")
            if self._pull(1):
                raise DeltaError(f"{self._where}: longer than its segment header says")
        if self._dec.unused_data or self._pos < len(self._data):
            raise DeltaError(f"{self._where}: bytes after the end of the .xz stream")
