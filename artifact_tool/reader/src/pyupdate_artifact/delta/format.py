"""The delta file's layout and limits: one home for the encoder and the applier.

Byte-level spec: docs/delta-format.md. All integers are little-endian.

    header   magic "PUDELTA\\n", version u16, flags u16, reserved u32,
             old_size u64, new_size u64, old sha256 (32), new sha256 (32)   = 96 bytes
    segment  out_len u64, then for ctrl, diff, lit: raw_len u32, xz_len u32  = 32 bytes
             then the three .xz streams, back to back
    end      a segment header of all zeros
"""

from __future__ import annotations

import struct

DELTA_TYPE = "pyupdate-delta"
DELTA_FILE = "rootfs.delta"

MAGIC = b"PUDELTA\n"
VERSION = 1
HEADER = struct.Struct("<8sHHIQQ32s32s")
SEGMENT = struct.Struct("<QIIIIII")

# Ops of the control stream: a tag byte, then LEB128 varints.
OP_COPY = 0  # length, signed old offset delta: new = old[off:off+len]
OP_ZERO = 1  # length: new = zeros
OP_ADD = 2  # length: new = the next `length` bytes of the literal stream
OP_DIFF = 3  # length, signed old offset delta: new = old[off:off+len] + diff bytes (mod 256)
OPS_WITH_OLD = (OP_COPY, OP_DIFF)

# Limits the applier enforces before it allocates (docs/delta-format.md#limits).
MAX_IMAGE = 1 << 40
MAX_SEGMENT_RAW = 16 << 20  # ctrl + diff + lit bytes of one segment, decompressed
MAX_SEGMENT_XZ = MAX_SEGMENT_RAW + (1 << 20)  # the three compressed streams together
# xz dictionary per stream (ctrl, diff, lit): the decoder's memory is its dictionary, and
# diff bytes (mostly zeros) lose little with a small one, literals lose more
MAX_DICT = (1 << 20, 2 << 20, 8 << 20)
XZ_MEMLIMIT = tuple(size + (1 << 20) for size in MAX_DICT)  # per decoder, dictionary included


def zigzag(value: int) -> int:
    return value << 1 if value >= 0 else ((-value) << 1) - 1


def unzigzag(value: int) -> int:
    return value >> 1 if not value & 1 else -((value + 1) >> 1)


def put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
