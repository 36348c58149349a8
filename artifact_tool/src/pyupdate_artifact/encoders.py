"""Streaming compressors for payload data, one per compression id.

Each takes an `out` callable and exposes write(), close() and abort(). The
writer hands them the inner tar in 1 MiB pieces.
"""

from __future__ import annotations

import lzma
import os
import threading
from collections.abc import Callable
from typing import Protocol

from .blocks import ParallelBlocks
from .compress import Compression, _zstandard
from .deflate import ParallelGzip

Out = Callable[[bytes], None]
CHUNK = 1 << 20

DEFAULT_LEVELS = {"gzip": 6, "lzma": 6, "zstd": 3}


class Encoder(Protocol):
    block: int  # input arrives in pieces that end on this grid

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class _Plain:
    block = CHUNK

    def __init__(self, out: Out) -> None:
        self.write = out

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _Lzma:
    block = CHUNK

    def __init__(self, out: Out, level: int) -> None:
        self._out = out
        self._obj = lzma.LZMACompressor(lzma.FORMAT_XZ, preset=level)

    def write(self, data: bytes) -> None:
        if chunk := self._obj.compress(data):
            self._out(chunk)

    def close(self) -> None:
        self._out(self._obj.flush())

    def abort(self) -> None:
        pass


ZSTD_BLOCK = 4 << 20


def parallel_zstd(out: Out, level: int, threads: int) -> ParallelBlocks:
    """One zstd frame per 4 MiB block, the blocks compressed on a thread pool.

    Against libzstd's own multithreading (1 MiB jobs), on a Debian rootfs ext4:
    0.34 vs 0.39 s on two cores and 4% smaller (50.8 vs 52.9 MB), since each
    frame sees 4 MiB of context; 1 MiB frames would cost 9% in size. Each
    frame carries its content size; RFC 8878 readers take the frames as one
    stream (zstd(1), Go's klauspost/compress, Mender's 3.10+ tools).
    """
    zstd = _zstandard()
    local = threading.local()

    def compress(block: bytes | memoryview) -> bytes:
        compressor = getattr(local, "compressor", None)
        if compressor is None:  # not thread-safe: one per pool thread
            compressor = local.compressor = zstd.ZstdCompressor(level=level)
        return compressor.compress(block)

    return ParallelBlocks(out, compress, threads=threads, block=ZSTD_BLOCK, ahead=threads - 1)


def threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def open_encoder(compression: Compression, out: Out, level: int | None = None) -> Encoder:
    if compression.id == "none":
        return _Plain(out)
    chosen = DEFAULT_LEVELS[compression.id] if level is None else level
    if compression.id == "gzip":
        return ParallelGzip(out, chosen, threads())
    if compression.id == "lzma":
        return _Lzma(out, chosen)
    return parallel_zstd(out, chosen, threads())
