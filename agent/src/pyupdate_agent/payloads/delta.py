"""The `pyupdate-delta` installer: a delta applied from the running slot into the other one.

Everything but the write path is the rootfs-image installer's (same slots, env,
commit and rollback: DeltaInstaller is a RootfsInstaller). Its one payload file,
`rootfs.delta`, streams into a DeltaApplier (pyupdate_artifact.delta) whose base
is the running slot, opened read-only, and whose output goes to the SlotWriter
of the inactive slot. The applier checks the base before its first output, so a
device whose slot is not the delta's base refuses with nothing written
(BaseMismatch; the daemon then installs the full artifact, standalone exits 9),
and it checks the new image's sha256 in `finish()`, before the flow switches the
env (docs/agent.md, "Delta updates").
"""

from __future__ import annotations

import ctypes

from pyupdate_artifact.delta import DELTA_TYPE, DeltaApplier, DeltaBaseMismatch
from pyupdate_artifact.errors import FormatError
from pyupdate_artifact.model import ArtifactHeader, Payload

from ..bootenv import BootEnv
from ..errors import BaseMismatch, SlotError
from ..slots import Slot
from .rootfs import RootfsInstaller, SlotWriter

__all__ = ["CHECKSUM", "DELTA_TYPE", "SLOT_PAYLOADS", "DeltaInstaller", "delta_checksums"]

CHECKSUM = "rootfs-image.checksum"
# the payload types the agent writes into the inactive slot itself (the rest are modules)
SLOT_PAYLOADS = ("rootfs-image", DELTA_TYPE)
_FULL = ": install the full artifact"
# The applier's output is gathered into pieces of this size before it goes to the
# SlotWriter: one queue item and one writev per MiB however finely the delta cuts
# the image, the same grain as a full install's.
PIECE = 1 << 20
# One piece waits while one is written: the applier (xz, sha256, base reads) is slower
# than the slot, so a deeper queue would only hold memory (docs/agent.md, "Delta updates").
QUEUE_DEPTH = 1


# glibc's own thresholds (mallopt(3)): buffers above 128 KiB are mmapped, freed heap
# tops trimmed
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _GLIBC_DEFAULT = -1, -3, 128 << 10


def _give_back_freed_buffers() -> None:
    """Undo pyupdate_artifact.heap.keep_freed_buffers() (`pyupdate install` sets it first
    thing): it saves a full install's page faults on many ~1 MiB buffers, but the
    applier's segment buffer (up to MAX_SEGMENT_XZ) then grows by copying inside the
    heap and stays there: ~10 MiB more peak RSS on a 1 GiB image (docs/agent.md,
    "Delta updates"). Elsewhere than glibc this does nothing."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT)
    mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)


def delta_checksums(header: ArtifactHeader) -> tuple[str, str]:
    """(base, result): the signed sha256 of the image the delta applies to (depends) and
    of the image it makes (provides); FormatError when either is missing."""
    info = header.payloads[0].type_info
    base, result = info.depends.get(CHECKSUM), info.provides.get(CHECKSUM)
    for what, value in (("depends", base), ("provides", result)):
        if not isinstance(value, str) or not value:
            raise FormatError(
                f"delta artifact {header.artifact_name}: no {CHECKSUM} in its type-info"
                f" {what}; a delta needs the checksums of both images"
            )
    return base, result  # type: ignore[return-value]


def _immutable(chunk: bytes | memoryview) -> bool:
    return isinstance(chunk, bytes) or (isinstance(chunk, memoryview) and chunk.readonly)


class _DeltaFile:
    """The PayloadWriter of `rootfs.delta`: applier in, slot writer out.

    The slot writer is opened at the applier's first output, which comes only after
    the base was checked: a refused delta never opens the inactive slot.
    """

    def __init__(self, installer: DeltaInstaller) -> None:
        self._installer = installer
        self._writer: SlotWriter | None = None
        self._buffer = bytearray()
        old = installer.old
        try:
            self._base = open(old.path, "rb", buffering=0)  # noqa: SIM115 (closed in finish/abort)
        except OSError as err:
            raise SlotError(
                f"slot {old.label}: cannot open {old.path} to read the delta's base"
                f" ({err.strerror})"
            ) from None
        self._applier = DeltaApplier(
            self._base,
            self._out,
            expect_base=installer.expect_base,
            expect_result=installer.expect_result,
        )

    def _out(self, chunk: bytes | memoryview) -> None:
        if self._writer is None:
            self._writer = SlotWriter(self._installer.new, 0, QUEUE_DEPTH)
        if not self._buffer and len(chunk) >= PIECE and _immutable(chunk):
            self._writer.write(chunk)  # type: ignore[arg-type]
            return
        # copied: the writer thread still reads a piece after this returns, and the
        # applier may reuse its buffer
        self._buffer += chunk
        if len(self._buffer) >= PIECE:
            piece, self._buffer = self._buffer, bytearray()
            self._writer.write(piece)  # type: ignore[arg-type]

    def write(self, chunk: bytes) -> None:
        try:
            self._applier.write(chunk)
        except DeltaBaseMismatch as err:
            why = str(err).removesuffix(_FULL)
            raise BaseMismatch(
                f"slot {self._installer.old.label}: base does not match the delta: {why}{_FULL}"
            ) from None

    def finish(self) -> None:
        """The result's size and sha256 checked, then the slot synced: only then may the
        flow point the env at it."""
        try:
            self._applier.finish()
            if self._writer is None:  # an empty image still has to be written (and synced)
                self._writer = SlotWriter(self._installer.new, 0, QUEUE_DEPTH)
            if self._buffer:
                piece, self._buffer = self._buffer, bytearray()
                self._writer.write(piece)  # type: ignore[arg-type]
        except BaseException:
            self.abort()
            raise
        writer, self._writer = self._writer, None
        self._base.close()
        writer.finish()

    def abort(self) -> None:
        self._applier.abort()  # its hashing thread would wait for bytes that never come
        self._buffer.clear()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abort()
        if not self._base.closed:
            self._base.close()


class DeltaInstaller(RootfsInstaller):
    """Args (besides RootfsInstaller's):
    expect_base, expect_result: delta_checksums() of the artifact.
    """

    def __init__(
        self,
        env: BootEnv,
        slots: tuple[Slot, Slot],
        old: Slot,
        new: Slot,
        expect_base: str,
        expect_result: str,
    ) -> None:
        super().__init__(env, slots, old, new)
        self.expect_base = expect_base
        self.expect_result = expect_result

    def begin_download(self) -> DeltaInstaller:
        _give_back_freed_buffers()
        return self

    def open_file(  # type: ignore[override]
        self, payload: Payload, name: str, size: int
    ) -> _DeltaFile:
        self._files += 1
        if self._files > 1:
            raise SlotError(f"{DELTA_TYPE} payload has more than one file ({name})")
        return _DeltaFile(self)

    def end_download(self) -> None:
        if self._files != 1:
            raise SlotError(f"{DELTA_TYPE} payload has no delta file")
