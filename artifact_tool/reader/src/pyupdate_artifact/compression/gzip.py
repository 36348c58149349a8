"""gzip (`.gz`), mender-artifact's default: reader, parallel encoder, header compressor.

Inflate uses `isal` when installed, zlib otherwise. The encoder deflates
1 MiB blocks in parallel, each as framed gzip members (docs/artifact-format.md
#framed-gzip); with `libdeflate` (the `deflate` package) installed, binaries
go to libdeflate and text and zeros to isal. PYUPDATE_NO_ACCEL=1 forces zlib
for both (benchmarks, tests). Why each backend is kept: docs/artifact-library.md#compressors.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from ..tarsafe import ByteSource
from .multistream import MultiStreamReader

if TYPE_CHECKING:
    from .blocks import ParallelBlocks

MAGIC = b"\x1f\x8b"
DEFAULT_LEVEL = 6
BLOCK = 1 << 20
_SAMPLE = 1 << 12
_SEGMENT = 1 << 16
_STORED_MAX = 65535
# Framed member header: magic+CM+FLG, MTIME, XFL, OS, XLEN, SI1SI2, LEN, total length
HEADER = struct.Struct("<4sIBBH2sHI")
_FRAMED = b"\x1f\x8b\x08\x04"  # deflate, FEXTRA set and no other flag
_SUBFIELD = (8, b"PU", 4)


def _accel() -> bool:
    return os.environ.get("PYUPDATE_NO_ACCEL") != "1"


def deflate_module() -> ModuleType:
    """isal's zlib-compatible module when installed and allowed, else zlib."""
    if _accel():
        try:
            from isal import isal_zlib
        except ImportError:
            pass
        else:
            return isal_zlib
    return zlib


def libdeflate() -> ModuleType | None:
    """The `deflate` package (libdeflate), for writing binaries: zlib's size at less CPU."""
    if not _accel():
        return None
    try:
        import deflate
    except ImportError:
        return None
    return deflate


# --- reading ----------------------------------------------------------------
def open_reader(raw: ByteSource, where: str) -> ByteSource:
    """Concatenated members as one stream; framed ones are read like any other."""
    module = deflate_module()
    return MultiStreamReader(raw, lambda: module.decompressobj(31), MAGIC, where)


# --- the header ---------------------------------------------------------------
def compress_small(data: bytes) -> bytes:
    # mtime 0 and no name: reproducible header blobs, like mender-artifact's stream entries.
    obj = zlib.compressobj(DEFAULT_LEVEL, zlib.DEFLATED, 31)
    return obj.compress(data) + obj.flush()


# --- payloads: framed members, deflated in parallel ---------------------------
def framed_member(raw: bytes, crc: int, size: int) -> bytes:
    """A whole gzip member around one finished raw deflate stream, its length in `PU`."""
    total = HEADER.size + len(raw) + 8
    head = HEADER.pack(_FRAMED, 0, 0, 0xFF, *_SUBFIELD, total)
    return b"".join((head, raw, struct.pack("<II", crc, size & 0xFFFFFFFF)))


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
    Random segments are stored: they cost 46 MiB/s per core to deflate at any
    level, but only a copy to store.
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
    """One block as one framed member, one deflater (zlib or isal) for all of it.

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
        parts.append(framed_member(raw, lib.crc32(segment), len(segment)))  # PCLMUL crc
    return b"".join(parts)


def _backend_level(module: ModuleType, lib: ModuleType | None, level: int) -> int:
    """The asked level mapped to what each backend does best near it."""
    if lib is not None:
        # libdeflate's level 3 is within 1% of its 6 on rootfs images at 0.7x the CPU
        return 3 if 2 <= level <= 6 else level
    # isal knows levels 0-3. Its level 2 costs 2.3x less CPU than 3 on the benchmark
    # image (0.92 vs 2.1 s/GiB, +0.14% size) and 1.7x less on a Debian rootfs ext4
    # (+1.5% size), so zlib's default 6 maps to 2; 7-9 still get isal's best (3).
    if module.__name__.endswith("isal_zlib"):
        return 1 if level <= 1 else 2 if level <= 6 else 3
    # The stdlib's zlib at level 4 is within 2.1% of its 6 on a Debian rootfs ext4 at
    # half the CPU (2.56 vs 4.95 s): the default for a host with no accelerated deflate.
    return 4 if 4 <= level <= 6 else level


def open_encoder(out: Callable[[bytes], None], level: int | None = None) -> ParallelBlocks:
    """write() uncompressed bytes, close() to finish; compressed bytes go to `out`."""
    from .blocks import ParallelBlocks, threads  # on first write: readers never start a pool

    module = deflate_module()
    lib = libdeflate()
    backends = (module, lib)
    job = _deflate_block if lib is None else _gzip_members
    chosen = _backend_level(module, lib, DEFAULT_LEVEL if level is None else level)

    def compress(block: bytes | memoryview) -> bytes:
        return job(backends, chosen, block)  # type: ignore[arg-type]

    workers = threads()
    return ParallelBlocks(out, compress, threads=workers, block=BLOCK, ahead=workers * 2 + 1)
