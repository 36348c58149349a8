"""zstd (`.zst`): needs the `zstandard` package, imported when first used.

Not readable by mender-artifact 3.9 or mender-client 3.4 (docs/artifact-format.md#compression).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import FormatError, UsageError
from ..tarsafe import ByteSource
from .multistream import RAW_CHUNK
from .zstdframes import FrameWalker

if TYPE_CHECKING:
    from .blocks import ParallelBlocks

DEFAULT_LEVEL = 3
BLOCK = 4 << 20


def _zstandard() -> ModuleType:
    try:
        import zstandard
    except ImportError:
        raise UsageError("zstd needs the 'zstandard' package (pip install zstandard)") from None
    return zstandard


class _Reader:
    def __init__(self, raw: ByteSource, where: str) -> None:
        zstd = _zstandard()
        self._where = where
        self._error = zstd.ZstdError
        # The walker sees every compressed byte: the decompressor ends a cut frame
        # as if the stream were complete, the walker's frame boundaries do not.
        self._frames = FrameWalker(raw, where)
        self._reader = zstd.ZstdDecompressor().stream_reader(
            self._frames, read_size=RAW_CHUNK, read_across_frames=True
        )

    def read(self, size: int, /) -> bytes:
        try:
            out = self._reader.read(size)
        except self._error as err:
            raise FormatError(f"{self._where}: corrupt compressed data ({err})") from None
        if not out and size:
            self._frames.check_end()
        return out


def open_reader(raw: ByteSource, where: str) -> ByteSource:
    return _Reader(raw, where)


def compress_small(data: bytes) -> bytes:
    return _zstandard().ZstdCompressor(level=DEFAULT_LEVEL).compress(data)


def open_encoder(out: Callable[[bytes], None], level: int | None = None) -> ParallelBlocks:
    """One zstd frame per 4 MiB block, the blocks compressed on a thread pool.

    Against libzstd's own multithreading (1 MiB jobs), on a Debian rootfs ext4:
    0.34 vs 0.39 s on two cores and 4% smaller (50.8 vs 52.9 MB), since each
    frame sees 4 MiB of context; 1 MiB frames would cost 9% in size. Each
    frame carries its content size; RFC 8878 readers take the frames as one
    stream (zstd(1), Go's klauspost/compress, Mender's 3.10+ tools).
    """
    from .blocks import ParallelBlocks, threads  # on first write: readers never start a pool

    zstd = _zstandard()
    chosen = DEFAULT_LEVEL if level is None else level
    local = threading.local()

    def compress(block: bytes | memoryview) -> bytes:
        compressor = getattr(local, "compressor", None)
        if compressor is None:  # not thread-safe: one per pool thread
            compressor = local.compressor = zstd.ZstdCompressor(level=chosen)
        return compressor.compress(block)

    workers = threads()
    return ParallelBlocks(out, compress, threads=workers, block=BLOCK, ahead=workers - 1)
