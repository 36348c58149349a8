"""Turns the encoder's ops into the delta file: segments of three .xz streams each.

Ops come in output order. Neighbouring ops of one kind merge (a run of copied
blocks is one COPY); a segment closes when its streams reach SEGMENT_RAW bytes,
splitting an op if need be, so the applier never holds more than one segment.
"""

from __future__ import annotations

import lzma
from dataclasses import dataclass
from typing import BinaryIO

from pyupdate_artifact.delta import format as fmt

SEGMENT_RAW = fmt.MAX_SEGMENT_RAW - 4096  # room for the ops that close a segment
_PRESET = 9 | lzma.PRESET_EXTREME


def _dict_size(length: int, largest: int) -> int:
    size = 1 << 16
    while size < length and size < largest:
        size <<= 1
    return size


def compress(data: bytes | bytearray, dict_size: int, *, try_x86: bool = False) -> bytes:
    """The smallest .xz of `data` among the filter chains tried (the decoder reads any)."""
    if not data:
        return b""
    lzma2 = {
        "id": lzma.FILTER_LZMA2,
        "preset": _PRESET,
        "dict_size": _dict_size(len(data), dict_size),
    }
    chains: list[list[dict[str, int]]] = [[lzma2]]
    if try_x86:  # literals often hold new executables: the x86 filter shrinks them ~10%
        chains.append([{"id": lzma.FILTER_X86}, lzma2])
    best = b""
    for chain in chains:
        packed = lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=chain)
        if not best or len(packed) < len(best):
            best = packed
    return best


@dataclass(slots=True)
class OpCounts:
    copy: int = 0
    zero: int = 0
    add: int = 0
    diff: int = 0
    ops: int = 0
    segments: int = 0


class SegmentWriter:
    def __init__(
        self,
        out: BinaryIO,
        *,
        old_size: int,
        new_size: int,
        old_sha: bytes,
        new_sha: bytes,
        segment_raw: int | None = None,
    ) -> None:
        self._out = out
        self._segment_raw = segment_raw or SEGMENT_RAW
        self.counts = OpCounts()
        self.size = 0
        self._write(
            fmt.HEADER.pack(fmt.MAGIC, fmt.VERSION, 0, 0, old_size, new_size, old_sha, new_sha)
        )
        self._reset()

    def _reset(self) -> None:
        self._ctrl = bytearray()
        self._diff = bytearray()
        self._lit = bytearray()
        self._out_len = 0
        self._old_cursor = 0
        self._pending: list[int] = []  # [op, length, old offset]: merged until the next op

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self.size += len(data)

    def _raw(self) -> int:
        return len(self._ctrl) + len(self._diff) + len(self._lit)

    # -- ops --------------------------------------------------------------
    def copy(self, old_at: int, length: int) -> None:
        self.counts.copy += length
        self._op(fmt.OP_COPY, length, old_at)

    def zero(self, length: int) -> None:
        self.counts.zero += length
        self._op(fmt.OP_ZERO, length, 0)

    def add(self, data: bytes | memoryview) -> None:
        self.counts.add += len(data)
        self._with_data(fmt.OP_ADD, data, 0)

    def diff(self, old_at: int, diff: bytes | memoryview) -> None:
        """`diff` is (new - old) mod 256 of the bytes at old_at."""
        self.counts.diff += len(diff)
        self._with_data(fmt.OP_DIFF, diff, old_at)

    def _with_data(self, op: int, data: bytes | memoryview, old_at: int) -> None:
        view = memoryview(data)
        while view:
            room = self._segment_raw - self._raw()
            if room <= 0:
                self._close_segment()
                continue
            piece = view[:room]
            (self._lit if op == fmt.OP_ADD else self._diff).extend(piece)
            self._op(op, len(piece), old_at)
            old_at += len(piece)
            view = view[len(piece) :]

    def _op(self, op: int, length: int, old_at: int) -> None:
        if not length:
            return
        pending = self._pending
        if (
            pending
            and pending[0] == op
            and (op not in fmt.OPS_WITH_OLD or pending[2] + pending[1] == old_at)
        ):
            pending[1] += length
        else:
            self._flush_op()
            self._pending = [op, length, old_at]
        self._out_len += length
        if self._raw() >= self._segment_raw:
            self._close_segment()

    def _flush_op(self) -> None:
        if not self._pending:
            return
        op, length, old_at = self._pending
        self._ctrl.append(op)
        fmt.put_varint(self._ctrl, length)
        if op in fmt.OPS_WITH_OLD:
            fmt.put_varint(self._ctrl, fmt.zigzag(old_at - self._old_cursor))
            self._old_cursor = old_at + length
        self.counts.ops += 1
        self._pending = []

    def _close_segment(self) -> None:
        self._flush_op()
        if self._out_len:
            ctrl_dict, diff_dict, lit_dict = fmt.MAX_DICT
            streams = (
                compress(self._ctrl, ctrl_dict),
                compress(self._diff, diff_dict),
                compress(self._lit, lit_dict, try_x86=True),
            )
            raws = (len(self._ctrl), len(self._diff), len(self._lit))
            header = fmt.SEGMENT.pack(
                self._out_len,
                *(n for pair in zip(raws, map(len, streams), strict=True) for n in pair),
            )
            self._write(header)
            for packed in streams:
                self._write(packed)
            self.counts.segments += 1
        self._reset()

    def close(self) -> None:
        self._close_segment()
        self._write(bytes(fmt.SEGMENT.size))
