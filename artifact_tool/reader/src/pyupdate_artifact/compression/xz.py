"""xz (`.xz`, id `lzma` as in mender-artifact): stdlib only, one thread.

`lzma` is imported when first used, not with this module: the registry loads
this module for every reader (the agent's too), and only xz artifacts should
pay lzma's ~3 ms import.
"""

from __future__ import annotations

from collections.abc import Callable

from ..tarsafe import ByteSource
from .multistream import MultiStreamReader

MAGIC = b"\xfd7zXZ\x00"
DEFAULT_LEVEL = 6
CHUNK = 1 << 20


def open_reader(raw: ByteSource, where: str) -> ByteSource:
    import lzma

    return MultiStreamReader(
        raw, lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ), MAGIC, where, keeps_input=True
    )


def compress_small(data: bytes) -> bytes:
    import lzma

    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=DEFAULT_LEVEL)


class _Encoder:
    block = CHUNK

    def __init__(self, out: Callable[[bytes], None], level: int) -> None:
        import lzma

        self._out = out
        self._obj = lzma.LZMACompressor(lzma.FORMAT_XZ, preset=level)

    def write(self, data: bytes) -> None:
        if chunk := self._obj.compress(data):
            self._out(chunk)

    def close(self) -> None:
        self._out(self._obj.flush())

    def abort(self) -> None:
        pass


def open_encoder(out: Callable[[bytes], None], level: int | None = None) -> _Encoder:
    return _Encoder(out, DEFAULT_LEVEL if level is None else level)
