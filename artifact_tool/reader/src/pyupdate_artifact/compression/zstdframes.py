"""Where zstd frames end, read from the compressed bytes as they pass.

`zstandard`'s stream reader reports a stream cut in the middle of a frame as
a normal end of data. Frame and block headers carry every length (RFC 8878
sections 3.1.1 and 3.1.1.2), so a walker over them knows, without
decompressing, whether the stream stopped exactly after a whole frame. It
costs a few operations per block (at most 128 KiB of output each).
"""

from __future__ import annotations

from ..errors import FormatError
from ..tarsafe import ByteSource

_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE = range(0x184D2A50, 0x184D2A60)
_DICT_ID_BYTES = (0, 1, 2, 4)
_FCS_BYTES = (0, 2, 4, 8)
_RLE, _RESERVED = 1, 3


class FrameWalker:
    """ByteSource passing `raw` through while tracking frame boundaries.

    `check_end()` raises FormatError unless the data seen so far is one or
    more whole frames. A malformed header is left to the decompressor to
    report (it sees the same bytes), so the walker only stops tracking.
    """

    def __init__(self, raw: ByteSource, where: str) -> None:
        self._raw = raw
        self._where = where
        self._head = bytearray()  # bytes of the header being read
        self._want = 4  # header bytes needed before the next decision
        self._skip = 0  # content bytes to pass over
        self._step = self._frame_start
        self._seen = 0
        self._lost = False
        self._checksum = False

    def read(self, size: int, /) -> bytes:
        data = self._raw.read(size)
        self._seen += len(data)
        if not self._lost:
            self._walk(memoryview(data))
        return data

    def check_end(self) -> None:
        if self._lost:
            return
        if self._seen == 0:
            raise FormatError(f"{self._where}: compressed stream is empty")
        if self._step != self._frame_start or self._head or self._skip:
            raise FormatError(f"{self._where}: compressed stream is truncated")

    def _walk(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end and not self._lost:
            if self._skip:
                n = min(self._skip, end - pos)
                self._skip -= n
                pos += n
                continue
            n = min(self._want - len(self._head), end - pos)
            self._head += data[pos : pos + n]
            pos += n
            if len(self._head) == self._want:
                self._step()

    def _expect(self, want: int, step) -> None:
        self._want, self._step = want, step

    def _frame_start(self) -> None:
        magic = bytes(self._head)
        self._head.clear()
        if magic == _FRAME_MAGIC:
            self._expect(1, self._descriptor)
        elif int.from_bytes(magic, "little") in _SKIPPABLE:
            self._expect(4, self._skippable_size)
        else:
            self._lost = True

    def _skippable_size(self) -> None:
        size = int.from_bytes(self._head, "little")
        self._head.clear()
        self._expect(4, self._frame_start)
        self._skip = size

    def _descriptor(self) -> None:
        flags = self._head[0]
        self._head.clear()
        single_segment = bool(flags & 0x20)
        self._checksum = bool(flags & 0x04)
        fcs = _FCS_BYTES[flags >> 6] or (1 if single_segment else 0)
        # Never 0: without a single segment there is a window byte, with one a size.
        self._expect(
            (0 if single_segment else 1) + _DICT_ID_BYTES[flags & 0x03] + fcs, self._blocks
        )

    def _blocks(self) -> None:
        self._head.clear()
        self._expect(3, self._block)

    def _block(self) -> None:
        header = int.from_bytes(self._head, "little")
        self._head.clear()
        last, kind, size = header & 1, (header >> 1) & 3, header >> 3
        if kind == _RESERVED:
            self._lost = True
            return
        self._skip = 1 if kind == _RLE else size
        if not last:
            self._expect(3, self._block)
        elif self._checksum:
            self._expect(4, self._frame_end)
        else:
            self._expect(4, self._frame_start)

    def _frame_end(self) -> None:
        self._head.clear()
        self._expect(4, self._frame_start)
