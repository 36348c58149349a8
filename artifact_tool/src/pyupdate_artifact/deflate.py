"""Parallel gzip: one gzip member made of independently deflated blocks (as pigz does).

Blocks are deflated on a thread pool (zlib, isal and zlib-ng release the GIL),
each ending on a byte boundary with a sync flush, so their concatenation is
one valid deflate stream any gunzip reads. Blocks that do not compress are
written as stored blocks: random data costs 46 MiB/s per core to deflate at
any level, but only a copy to store. The CRC of each block is computed on its
worker and combined here.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType

from .compress import deflate_module

BLOCK = 1 << 20
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_SAMPLE = 1 << 12
_SEGMENT = 1 << 16
_STORED_MAX = 65535

# --- crc32_combine, after zlib 1.2.12's crc32.c ---------------------------
_POLY = 0xEDB88320


def _multmodp(a: int, b: int) -> int:
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _x2n_table() -> list[int]:
    table, p = [], 1 << 30
    for _ in range(32):
        table.append(p)
        p = _multmodp(p, p)
    return table


_X2N = _x2n_table()


def _x8nmodp(n: int) -> int:
    """x^(8n) mod p: the operator that appends n zero bytes to a CRC."""
    p, k = 1 << 31, 3
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    return _multmodp(_x8nmodp(len2), crc1) ^ crc2


# --- blocks ----------------------------------------------------------------
def stored_blocks(data: bytes | memoryview, final: bool) -> bytes:
    """Raw deflate stored blocks (byte-aligned input position assumed)."""
    view = memoryview(data)
    parts = []
    if not len(view):
        return b"\x01\x00\x00\xff\xff" if final else b""
    for start in range(0, len(view), _STORED_MAX):
        chunk = view[start : start + _STORED_MAX]
        last = final and start + _STORED_MAX >= len(view)
        parts.append(struct.pack("<BHH", 1 if last else 0, len(chunk), len(chunk) ^ 0xFFFF))
        parts.append(chunk)
    return b"".join(parts)


# Kinds of 64 KiB segments, from a level-1 deflate of a 4 KiB sample.
STORE, EASY, HARD = "store", "easy", "hard"
_EASY_RATIO = 0.25  # text and zeros: every deflater gets them tiny, the fastest wins


def _kind(module: ModuleType, segment: memoryview) -> str:
    sample = segment[:_SAMPLE]
    ratio = len(module.compress(sample, 1)) / max(len(sample), 1)
    return STORE if ratio > 0.97 else EASY if ratio < _EASY_RATIO else HARD


def _runs(module: ModuleType, view: memoryview, kinds: bool = False) -> list[list]:
    """[start, end, kind] runs of 64 KiB segments, neighbours of one kind merged.

    The choice is made per 64 KiB segment from a 4 KiB sample: a block of a
    real filesystem image often mixes compressed files with text and zeros,
    and storing the whole block because its start is random cost 60% in size.
    Without `kinds`, EASY and HARD are one kind (the third item is then "store?").
    """
    runs: list[list] = []
    for start in range(0, len(view), _SEGMENT):
        segment = view[start : start + _SEGMENT]
        kind = _kind(module, segment)
        label: object = kind if kinds else kind == STORE
        if runs and runs[-1][2] == label:
            runs[-1][1] = start + len(segment)
        else:
            runs.append([start, start + len(segment), label])
    return runs


def _deflate_block(
    module: ModuleType, level: int, data: bytes, final: bool
) -> tuple[bytes, int, int]:
    """Deflate one block of the single-member stream, stored where it does not compress."""
    crc = module.crc32(data)
    view = memoryview(data)
    runs = _runs(module, view)
    if not runs:
        return stored_blocks(b"", final), crc, 0
    parts = []
    for number, (start, end, store) in enumerate(runs):
        last = final and number == len(runs) - 1
        if store:
            parts.append(stored_blocks(view[start:end], last))
            continue
        obj = module.compressobj(level, module.DEFLATED, -15)
        parts.append(obj.compress(view[start:end]))
        parts.append(obj.flush(module.Z_FINISH if last else module.Z_SYNC_FLUSH))
    return b"".join(parts), crc, len(data)


def _gzip_members(
    backends: tuple[ModuleType, ModuleType], level: int, data: bytes, final: bool
) -> tuple[bytes, int, int]:
    """One block as whole gzip members, the deflater chosen per run of segments.

    libdeflate gets zlib's level-6 size at 4-5x its speed on binaries (where
    size differs between deflaters); isal is 4x faster still on text and zeros
    (where every deflater's output is tiny). libdeflate ends every buffer with
    a final block, so its output cannot be chained into one deflate stream;
    concatenated gzip members are one gzip file to every reader (gzip, Go's
    multistream readers, ours).
    """
    lib, fast = backends
    view = memoryview(data)
    parts = []
    for start, end, kind in _runs(fast, view, kinds=True) or [[0, 0, HARD]]:
        segment = view[start:end]
        if kind == STORE:
            trailer = struct.pack("<II", zlib.crc32(segment), len(segment))
            parts += [_GZIP_HEADER, stored_blocks(segment, True), trailer]
        elif kind == EASY and fast is not zlib:
            parts.append(fast.compress(segment, 2, 31))  # isal: level 2, gzip wrapper
        else:
            parts.append(lib.gzip_compress(bytes(segment), level))
    return b"".join(parts), 0, len(data)


def libdeflate() -> ModuleType | None:
    """The `deflate` package (libdeflate): zlib's ratio at 3-4x its speed."""
    if os.environ.get("PYUPDATE_NO_ACCEL") == "1":
        return None
    try:
        import deflate
    except ImportError:
        return None
    return deflate


class ParallelGzip:
    """write() uncompressed bytes, close() to finish; compressed bytes go to `out`."""

    def __init__(self, out: Callable[[bytes], None], level: int = 6, threads: int = 2) -> None:
        self._out = out
        self._module = deflate_module()
        self._lib = libdeflate()
        if self._lib is not None:
            # whole gzip members per block: no running CRC, no shared header/trailer
            self._job: Callable[..., tuple[bytes, int, int]] = _gzip_members
            self._backend: object = (self._lib, self._module)
            # libdeflate's level 3 is within 1% of its 6 on rootfs images at 0.7x the CPU
            level = 3 if 2 <= level <= 6 else level
        else:
            self._job = _deflate_block
            self._backend = self._module
        # isal knows levels 0-3. Its level 2 costs 2.3x less CPU than 3 on the benchmark
        # image (0.92 vs 2.1 s/GiB, +0.14% size) and 1.7x less on a Debian rootfs ext4
        # (+1.5% size), so zlib's default 6 maps to 2; 7-9 still get isal's best (3).
        if self._lib is None and self._module.__name__.endswith("isal_zlib"):
            level = 1 if level <= 1 else 2 if level <= 6 else 3
        self._level = level
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deflate")
        self._pending: deque[Future[tuple[bytes, int, int]]] = deque()
        self._max_pending = threads * 2 + 1
        self._buffer = bytearray()
        self._crc = 0
        self._size = 0
        self._full_block_op = _x8nmodp(BLOCK)
        if self._lib is None:
            out(_GZIP_HEADER)

    def write(self, data: bytes) -> None:
        if not self._buffer and len(data) == BLOCK:
            self._submit(data, False)
            return
        self._buffer += data
        while len(self._buffer) >= BLOCK:
            block = bytes(self._buffer[:BLOCK])
            del self._buffer[:BLOCK]
            self._submit(block, False)

    def _submit(self, block: bytes, final: bool) -> None:
        self._pending.append(self._pool.submit(self._job, self._backend, self._level, block, final))
        while len(self._pending) > self._max_pending:
            self._drain_one()

    def _drain_one(self) -> None:
        out, crc, size = self._pending.popleft().result()
        if self._lib is None:
            op = self._full_block_op if size == BLOCK else _x8nmodp(size)
            self._crc = _multmodp(op, self._crc) ^ crc
        self._size += size
        self._out(out)

    def close(self) -> None:
        try:
            self._submit(bytes(self._buffer), True)
            self._buffer.clear()
            while self._pending:
                self._drain_one()
            if self._lib is None:
                self._out(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
