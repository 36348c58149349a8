"""DeltaApplier: the new image from the base slot and a streamed delta, in bounded memory.

Payload bytes arrive through write(); the header is checked and the base
hashed before out() is first called, so a wrong base leaves the target slot
untouched. One segment's compressed streams are held at a time (at most
MAX_SEGMENT_XZ); the base is read with pread in PIECE-sized steps.
"""

from __future__ import annotations

import hashlib
import lzma
import os
from collections.abc import Callable
from typing import BinaryIO

from . import format as fmt
from .bytesum import add_bytes
from .errors import DeltaBaseMismatch, DeltaBaseUnreadable, DeltaError
from .hashing import ThreadedSha256
from .ops import OpReader
from .streams import StreamPuller

PIECE = 256 << 10  # largest buffer handed to out() or read from the base at once
_VERIFY_READ = 1 << 20  # larger reads while hashing the base: nothing else is held then
_ZEROS = memoryview(bytes(PIECE))

Out = Callable[[bytes | memoryview], None]


class DeltaApplier:
    def __init__(self, base: BinaryIO, out: Out, *, expect_base: str, expect_result: str) -> None:
        self._base = base
        self._out = out
        self._expect_base = expect_base.lower()
        self._expect_result = expect_result.lower()
        self._buf = bytearray()
        self._need = fmt.HEADER.size  # bytes that complete the next piece being parsed
        self._segment: tuple[int, int, int, int, int, int, int] | None = None
        self._old_size = self._new_size = 0
        self._written = 0
        self._ended = False
        self._result = ThreadedSha256()
        self._small = bytearray()  # output of small ops not yet handed to out()
        self._header_seen = False
        try:
            self._fd: int | None = base.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None  # a file object without a descriptor: seek + read

    # -- input ----------------------------------------------------------
    def write(self, chunk: bytes | memoryview) -> None:
        try:
            self._write(chunk)
        except BaseException:
            self._result.close()  # no thread left behind by a failed apply
            raise

    def _write(self, chunk: bytes | memoryview) -> None:
        if self._ended:
            if len(chunk):
                raise DeltaError("delta: data after the end of the delta")
            return
        self._buf += chunk
        while not self._ended and len(self._buf) >= self._need:
            if not self._header_seen:
                self._take_header()
            elif self._segment is None:
                self._take_segment_header()
            else:
                self._take_segment_body()

    def finish(self) -> None:
        digest = self._result.hexdigest()
        if not self._header_seen:
            raise DeltaError("delta: truncated before the end of its header")
        if not self._ended:
            raise DeltaError(
                f"delta: truncated (ends after {self._written} of {self._new_size} output bytes)"
            )
        if self._written != self._new_size:
            raise DeltaError(
                f"delta: produced {self._written} bytes, its header says {self._new_size}"
            )
        if digest != self._expect_result:
            raise DeltaError("delta: the result's sha256 does not match the new image checksum")

    def abort(self) -> None:
        """The payload will not complete (download failed): stop the hashing thread."""
        self._result.close()

    # -- header and base --------------------------------------------------
    def _take_header(self) -> None:
        raw = bytes(self._buf[: fmt.HEADER.size])
        del self._buf[: fmt.HEADER.size]
        magic, version, flags, reserved, old_size, new_size, old_sha, new_sha = fmt.HEADER.unpack(
            raw
        )
        if magic != fmt.MAGIC:
            raise DeltaError("delta: not a pyupdate delta (bad magic)")
        if version != fmt.VERSION or flags or reserved:
            raise DeltaError(f"delta: unsupported version {version} (flags {flags:#x})")
        if old_size > fmt.MAX_IMAGE or new_size > fmt.MAX_IMAGE:
            raise DeltaError(f"delta: image sizes {old_size}/{new_size} exceed {fmt.MAX_IMAGE}")
        if old_sha.hex() != self._expect_base:
            raise DeltaError("delta: its base checksum differs from the artifact's depends")
        if new_sha.hex() != self._expect_result:
            raise DeltaError("delta: its result checksum differs from the artifact's provides")
        self._old_size, self._new_size = old_size, new_size
        self._check_base()
        self._header_seen = True
        self._need = fmt.SEGMENT.size

    def _check_base(self) -> None:
        digest = hashlib.sha256()
        offset = 0
        while offset < self._old_size:
            try:
                data = self._pread(min(_VERIFY_READ, self._old_size - offset), offset)
            except DeltaError as err:
                raise DeltaBaseUnreadable(f"{err}: install the full artifact") from None
            if not data:
                raise DeltaBaseMismatch(
                    f"base slot is {offset} bytes, smaller than the delta's base image "
                    f"({self._old_size} bytes): install the full artifact"
                )
            digest.update(data)
            offset += len(data)
        if digest.hexdigest() != self._expect_base:
            raise DeltaBaseMismatch(
                "base slot does not hold the delta's base image (checksum differs): "
                "install the full artifact"
            )

    def _pread(self, size: int, offset: int) -> bytes:
        try:
            if self._fd is not None:
                return os.pread(self._fd, size, offset)
            self._base.seek(offset)
            return self._base.read(size)
        except OSError as err:
            raise DeltaError(
                f"base slot read failed at offset {offset}: {err.strerror or err}"
            ) from None

    def _old(self, offset: int, size: int) -> bytes:
        data = self._pread(size, offset)
        while len(data) < size:  # short reads happen on some block devices
            more = self._pread(size - len(data), offset + len(data))
            if not more:
                raise DeltaError(f"base slot read failed at offset {offset}: short read")
            data += more
        return data

    # -- segments -------------------------------------------------------
    def _take_segment_header(self) -> None:
        raw = bytes(self._buf[: fmt.SEGMENT.size])
        del self._buf[: fmt.SEGMENT.size]
        seg = fmt.SEGMENT.unpack(raw)
        out_len, ctrl_raw, ctrl_xz, diff_raw, diff_xz, lit_raw, lit_xz = seg
        if not any(seg):
            self._ended = True
            if self._buf:
                raise DeltaError("delta: data after the end of the delta")
            return
        where = f"delta: segment at output offset {self._written}"
        if out_len == 0 or out_len > self._new_size - self._written:
            raise DeltaError(f"{where}: output length {out_len} runs past the new image size")
        if ctrl_raw + diff_raw + lit_raw > fmt.MAX_SEGMENT_RAW:
            raise DeltaError(f"{where}: streams exceed {fmt.MAX_SEGMENT_RAW} bytes")
        if ctrl_xz + diff_xz + lit_xz > fmt.MAX_SEGMENT_XZ:
            raise DeltaError(f"{where}: compressed streams exceed {fmt.MAX_SEGMENT_XZ} bytes")
        if diff_raw > out_len or lit_raw > out_len:
            raise DeltaError(f"{where}: more diff or literal bytes than output bytes")
        self._segment = seg
        self._need = ctrl_xz + diff_xz + lit_xz

    def _take_segment_body(self) -> None:
        assert self._segment is not None
        with memoryview(self._buf) as body:
            try:
                self._apply_segment(body[: self._need], self._segment)
            except lzma.LZMAError as err:
                raise DeltaError(f"delta: corrupt compressed stream ({err})") from None
        del self._buf[: self._need]
        self._segment = None
        self._need = fmt.SEGMENT.size

    def _apply_segment(self, body: memoryview, segment: tuple[int, ...]) -> None:
        # the stream views live only in this frame: the buffer can shrink once it returns
        out_len, ctrl_raw, ctrl_xz, diff_raw, diff_xz, lit_raw, _ = segment
        where = f"delta: segment at output offset {self._written}"
        ctrl_limit, diff_limit, lit_limit = fmt.XZ_MEMLIMIT
        ctrl = StreamPuller(body[:ctrl_xz], ctrl_raw, ctrl_limit, f"{where}: control stream")
        diff = StreamPuller(
            body[ctrl_xz : ctrl_xz + diff_xz], diff_raw, diff_limit, f"{where}: diff stream"
        )
        lit = StreamPuller(body[ctrl_xz + diff_xz :], lit_raw, lit_limit, f"{where}: literals")
        self._run_ops(OpReader(ctrl.read(ctrl_raw), where), out_len, diff, lit, where)
        for stream in (ctrl, diff, lit):
            stream.check_consumed()

    def _run_ops(
        self, ops: OpReader, out_len: int, diff: StreamPuller, lit: StreamPuller, where: str
    ) -> None:
        end = self._written + out_len
        for op, length, old_at in ops:
            if length > end - self._written:
                raise DeltaError(f"{where}: an op of {length} bytes runs past the segment")
            if op in fmt.OPS_WITH_OLD and old_at + length > self._old_size:
                raise DeltaError(
                    f"{where}: an op reads base bytes {old_at}..{old_at + length}, "
                    f"past the base image size {self._old_size}"
                )
            while length:
                step = min(length, PIECE)
                if op == fmt.OP_COPY:
                    self._emit(self._old(old_at, step))
                elif op == fmt.OP_ZERO:
                    self._emit(_ZEROS[:step])
                elif op == fmt.OP_ADD:
                    self._emit(lit.read(step))
                else:
                    self._emit(add_bytes(self._old(old_at, step), diff.read(step)))
                old_at += step
                length -= step
        if self._written != end:
            raise DeltaError(f"{where}: its ops produce fewer bytes than its header says")
        self._flush()

    def _emit(self, data: bytes | memoryview) -> None:
        # small ops (a relinked library is thousands of them) are gathered into
        # PIECE-sized writes: per-call costs of out() and the hashing queue dominate else
        self._written += len(data)
        small = self._small
        if len(data) < PIECE // 4:
            small += data
            if len(small) >= PIECE:
                self._flush()
            return
        self._flush()
        self._result.update(data)
        self._out(data)

    def _flush(self) -> None:
        if self._small:
            data = bytes(self._small)
            self._small.clear()
            self._result.update(data)
            self._out(data)
