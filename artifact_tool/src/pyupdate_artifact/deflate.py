"""Parallel gzip: independently deflated 1 MiB blocks, each a framed gzip member.

Blocks are deflated on a thread pool (zlib, isal, zlib-ng and libdeflate
release the GIL). Each block becomes whole gzip members that carry their own
length (members.py), so a reader inflates them in parallel too; the
concatenation is one gzip stream to gunzip, Go and Mender. Segments that do
not compress are written as stored blocks: random data costs 46 MiB/s per
core to deflate at any level, but only a copy to store.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from types import ModuleType

from .blocks import ParallelBlocks
from .compress import deflate_module, libdeflate
from .members import crc32, framed_member

BLOCK = 1 << 20
_SAMPLE = 1 << 12
_SEGMENT = 1 << 16
_STORED_MAX = 65535


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


def _runs(module: ModuleType, view: memoryview) -> list[list]:
    """[start, end, kind] runs of 64 KiB segments, neighbours of one kind merged.

    The choice is made per 64 KiB segment from a 4 KiB sample: a block of a
    real filesystem image often mixes compressed files with text and zeros,
    and storing the whole block because its start is random cost 60% in size.
    """
    runs: list[list] = []
    for start in range(0, len(view), _SEGMENT):
        segment = view[start : start + _SEGMENT]
        kind = _kind(module, segment)
        if runs and runs[-1][2] == kind:
            runs[-1][1] = start + len(segment)
        else:
            runs.append([start, start + len(segment), kind])
    return runs


def _deflate_block(
    backends: tuple[ModuleType, None], level: int, data: bytes | memoryview
) -> bytes:
    """One block as one framed member, one deflater (zlib, isal or zlib-ng) for all of it.

    Text and zeros get level 1 up to the default level: zlib's level 6 costs 2.7x
    its level 1 there (286 vs 802 MiB/s on text) for output that is tiny either way.
    """
    module = backends[0]
    view = memoryview(data)
    parts = []
    runs = _runs(module, view)
    for number, (start, end, kind) in enumerate(runs):
        last = number == len(runs) - 1
        if kind == STORE:
            parts.append(stored_blocks(view[start:end], last))
            continue
        chosen = min(level, 1) if kind == EASY and level <= 6 else level
        obj = module.compressobj(chosen, module.DEFLATED, -15)
        parts.append(obj.compress(view[start:end]))
        parts.append(obj.flush(module.Z_FINISH if last else module.Z_SYNC_FLUSH))
    raw = b"".join(parts) if runs else stored_blocks(b"", True)
    return framed_member(raw, module.crc32(data), len(data))


def _gzip_members(
    backends: tuple[ModuleType, ModuleType], level: int, data: bytes | memoryview
) -> bytes:
    """One block as framed members, the deflater chosen per run of segments.

    libdeflate gets zlib's level-6 size at 4-5x its speed on binaries (where
    size differs between deflaters); isal is 4x faster still on text and zeros
    (where every deflater's output is tiny). libdeflate ends every buffer with
    a final block, so each run is a member of its own.
    """
    fast, lib = backends
    view = memoryview(data)
    parts = []
    for start, end, kind in _runs(fast, view) or [[0, 0, HARD]]:
        segment = view[start:end]
        if kind == STORE:
            raw = stored_blocks(segment, True)
        elif kind == EASY and fast.__name__ != "zlib":
            raw = fast.compress(segment, 2, -15)  # isal: level 2, raw deflate
        else:
            raw = lib.deflate_compress(bytes(segment), level)
        parts.append(framed_member(raw, crc32(lib, segment), len(segment)))
    return b"".join(parts)


class ParallelGzip(ParallelBlocks):
    """write() uncompressed bytes, close() to finish; compressed bytes go to `out`."""

    def __init__(self, out: Callable[[bytes], None], level: int = 6, threads: int = 2) -> None:
        module = deflate_module()
        lib = libdeflate()
        backends = (module, lib)
        job = _deflate_block if lib is None else _gzip_members
        if lib is not None:
            # libdeflate's level 3 is within 1% of its 6 on rootfs images at 0.7x the CPU
            level = 3 if 2 <= level <= 6 else level
        # isal knows levels 0-3. Its level 2 costs 2.3x less CPU than 3 on the benchmark
        # image (0.92 vs 2.1 s/GiB, +0.14% size) and 1.7x less on a Debian rootfs ext4
        # (+1.5% size), so zlib's default 6 maps to 2; 7-9 still get isal's best (3).
        if lib is None and module.__name__.endswith("isal_zlib"):
            level = 1 if level <= 1 else 2 if level <= 6 else 3
        # The stdlib's zlib at level 4 is within 2.1% of its 6 on a Debian rootfs ext4 at
        # half the CPU (2.56 vs 4.95 s): the default for a host with no accelerated deflate.
        if lib is None and module.__name__ == "zlib":
            level = 4 if 4 <= level <= 6 else level
        chosen = level

        def compress(block: bytes | memoryview) -> bytes:
            return job(backends, chosen, block)

        super().__init__(out, compress, threads=threads, block=BLOCK, ahead=threads * 2 + 1)
