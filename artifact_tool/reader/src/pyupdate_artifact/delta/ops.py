"""Parses a segment's control stream into (op, length, old offset) triples."""

from __future__ import annotations

from collections.abc import Iterator

from . import format as fmt
from .errors import DeltaError


class OpReader:
    """Iterates the ops; old offsets come out absolute (the stream stores signed deltas)."""

    def __init__(self, ctrl: bytes, where: str) -> None:
        self._ctrl = ctrl
        self._pos = 0
        self._where = where
        self.old_cursor = 0  # each segment starts from base offset 0

    def _varint(self) -> int:
        ctrl, pos = self._ctrl, self._pos
        value = shift = 0
        while True:
            if pos >= len(ctrl):
                raise DeltaError(f"{self._where}: control stream ends inside an op")
            byte = ctrl[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 63:
                raise DeltaError(f"{self._where}: control stream holds an oversized number")
        self._pos = pos
        return value

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        ctrl = self._ctrl
        while self._pos < len(ctrl):
            op = ctrl[self._pos]
            self._pos += 1
            if op > fmt.OP_DIFF:
                raise DeltaError(f"{self._where}: unknown op {op} in the control stream")
            length = self._varint()
            if length == 0:
                raise DeltaError(f"{self._where}: an op of length 0")
            old_at = 0
            if op in fmt.OPS_WITH_OLD:
                old_at = self.old_cursor + fmt.unzigzag(self._varint())
                if old_at < 0:
                    raise DeltaError(f"{self._where}: an op reads before the base image")
                self.old_cursor = old_at + length
            yield op, length, old_at
