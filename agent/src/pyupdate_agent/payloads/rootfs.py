"""The built-in rootfs-image installer: the image into the inactive slot, then the env.

Write path: the reader decompresses and hashes in the calling thread while a
writer thread writes whole pages into the slot, so inflate, sha256 and
the kernel's copy overlap (zlib, hashlib and os.write release the GIL). One
fsync at the end. The bootloader is switched only by `install()`, which the
flow calls after the reader has verified the image's checksum and `finish()`
has synced it; what it writes is the backend's (docs/boot-env.md, "Backends").
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import queue
import stat
import struct
import threading

from ..bootenv import BootEnv
from ..errors import SlotError, UpdateError
from ..slots import Slot, running_slot

log = logging.getLogger(__name__)

PAGE = 4096  # writes end on the page grid: a partial page would be read from the slot first
QUEUE_DEPTH = 4  # chunks of ~1 MiB waiting for the slot
# Start the kernel's writeback every WRITEBACK bytes instead of leaving a whole image
# dirty for the final fsync: the device writes while we inflate and hash, the final
# fsync has little left to wait for, and the page cache stays small on small devices.
WRITEBACK = 32 << 20
_SYNC_FILE_RANGE_WRITE = 2
_BLKGETSIZE64 = 0x80081272


class RolledBack(UpdateError):
    """The bootloader went back to the old slot: the update failed."""


def _load_sync_file_range():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return func


_sync_file_range = _load_sync_file_range()


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing [offset, offset+length) back; never waits."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
    # pages of the window before are clean by now: drop them from the cache
    if offset >= length:
        os.posix_fadvise(fd, offset - length, length, os.POSIX_FADV_DONTNEED)


def _write_all(fd: int, pieces: list[bytes | memoryview]) -> int:
    """writev until every byte of `pieces` is written; returns the count."""
    views = [memoryview(p) for p in pieces if len(p)]
    total = sum(len(v) for v in views)
    while views:
        done = os.writev(fd, views)
        while done:
            if done >= len(views[0]):
                done -= len(views.pop(0))
            else:
                views[0], done = views[0][done:], 0
    return total


def slot_size(path: str, fd: int) -> int:
    st = os.fstat(fd)
    if stat.S_ISBLK(st.st_mode):
        buf = fcntl.ioctl(fd, _BLKGETSIZE64, b"\0" * 8)
        return int(struct.unpack("Q", buf)[0])
    return st.st_size


class SlotWriter:
    """Writes one image into `slot`; `finish()` syncs, `abort()` leaves it unbootable.
    `depth`: chunks that may wait for the slot (memory against overlap)."""

    def __init__(self, slot: Slot, size: int, depth: int = QUEUE_DEPTH) -> None:
        self.slot = slot
        try:
            # no O_CREAT: a missing slot is an error, never a new file
            self._fd = os.open(slot.path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as err:
            raise SlotError(
                f"slot {slot.label}: cannot open {slot.path} for writing ({err.strerror})"
            ) from None
        self.capacity = slot_size(slot.path, self._fd)
        if size > self.capacity:
            os.close(self._fd)
            raise self._too_big(size)
        self.written = 0
        self._carry = b""
        self._queue: queue.Queue[list[bytes | memoryview] | None] = queue.Queue(depth)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._drain, name="slot-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        offset = flushed = 0
        while True:
            pieces = self._queue.get()
            if pieces is None:
                return
            if self._error is not None:
                continue
            try:
                offset += _write_all(self._fd, pieces)
                if offset - flushed >= WRITEBACK:
                    _start_writeback(self._fd, flushed, offset - flushed)
                    flushed = offset
            except OSError as err:
                self._error = err

    def _too_big(self, size: int) -> SlotError:
        return SlotError(
            f"slot {self.slot.label}: image of {size} bytes does not fit {self.slot.path}"
            f" ({self.capacity} bytes)"
        )

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise SlotError(
                f"slot {self.slot.label}: write to {self.slot.path} failed ({self._error.strerror})"
            )

    def write(self, chunk: bytes) -> None:
        """Queue `chunk` for the slot; whole pages go out, the tail waits for the next one.

        The payload starts 512 bytes into its tar, so chunks arrive 512 bytes off
        the page grid. The carried tail (< 4 KiB) and the chunk go to one writev,
        with no copy of the chunk: re-buffering it on this thread, the one that
        hashes, cost ~4 MiB of copying per MiB.
        """
        self._raise_if_failed()
        self.written += len(chunk)
        if self.written > self.capacity:
            # an image of unknown size (a delta's) that outgrows the slot: on a block
            # device the write would fail anyway, a file-backed slot would grow
            raise self._too_big(self.written)
        view = memoryview(chunk)
        total = len(self._carry) + len(view)
        whole = total - total % PAGE
        if not whole:
            self._carry += view
            return
        take = whole - len(self._carry)  # > 0: the carry is shorter than a page
        pieces = [self._carry, view[:take]] if self._carry else [view[:take]]
        self._queue.put(pieces)
        self._carry = bytes(view[take:])

    def finish(self) -> None:
        if self._carry:
            self._queue.put([self._carry])
            self._carry = b""
        self._queue.put(None)
        self._thread.join()
        try:
            self._raise_if_failed()
            # the only sync: the env may point at this slot only once it is on disk
            os.fsync(self._fd)
        except OSError as err:
            raise SlotError(f"slot {self.slot.label}: sync failed ({err.strerror})") from None
        finally:
            os.close(self._fd)

    def abort(self) -> None:
        self._carry = b""
        self._error = self._error or OSError(0, "aborted")
        self._queue.put(None)
        self._thread.join()
        os.close(self._fd)


class RootfsInstaller:
    """Args:
    env: the bootloader backend.
    slots: (A, B).
    old, new: the running slot when the install started, and the one written.
    """

    def __init__(self, env: BootEnv, slots: tuple[Slot, Slot], old: Slot, new: Slot) -> None:
        self.env = env
        self.slots = slots
        self.old = old
        self.new = new
        self._writer: SlotWriter | None = None
        self._files = 0

    # Download
    def begin_download(self) -> RootfsInstaller:
        return self

    def open_file(self, payload: object, name: str, size: int) -> SlotWriter:
        self._files += 1
        if self._files > 1:
            raise SlotError(f"rootfs-image payload has more than one file ({name})")
        self._writer = SlotWriter(self.new, size)
        return self._writer

    def end_download(self) -> None:
        if self._files != 1:
            raise SlotError("rootfs-image payload has no image file")

    def abort_download(self) -> None:
        """Nothing to undo: the bootloader still boots the old slot."""

    def supports_rollback(self) -> bool:
        return True

    def needs_reboot(self) -> str:
        return "Yes"

    def install(self) -> None:
        self.env.start_trial(self.new)
        log.info("boot env switched", extra={"slot": self.new.label})

    def check_not_fallen_back(self, artifact_name: str) -> None:
        """RolledBack if the bootloader gave up on the new slot (BootState.fell_back)."""
        if self.env.state().fell_back(self.new):
            raise RolledBack(
                f"the bootloader rolled back to slot {self.old.label}: {artifact_name} did not boot"
            )

    def runs_new(self) -> bool:
        """The new slot runs: the mounted root says so, or else the bootloader does."""
        return running_slot(self.slots, self.env.state().booted) == self.new

    def commit_precondition(self) -> None:
        """Commit only from the new slot: committing before the reboot would drop the fallback."""
        if not self.runs_new():
            raise UpdateError(
                f"the device still runs slot {self.old.label}: reboot into slot"
                f" {self.new.label} first, then commit"
            )

    def commit(self) -> None:
        self.env.confirm(self.new)

    def rollback(self) -> None:
        self.env.cancel(self.old)

    def failure(self) -> None:
        """Nothing beyond the rollback: the old slot is untouched."""

    def cleanup(self) -> None:
        """Nothing to remove: the slot stays as written, just not bootable."""
