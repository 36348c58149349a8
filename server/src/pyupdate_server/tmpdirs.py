"""Temp dirs under `<data_dir>/tmp/`, one per running `serve`, so processes can share a data dir.

Uploads are staged in a temp dir and renamed into place; what a crash left there must
go at the next start ("never half a result"). With one process per data dir that was
"empty tmp/ at start". Several `serve` processes may share a data dir (a second one
on the same host, N workers, hosts on a shared filesystem), and emptying tmp/ would
then delete another live process's upload in flight.

So each `serve` gets `tmp/<id>/` and holds a shared `flock` on `tmp/<id>.lock` for as
long as it (or any of its workers) runs: the kernel drops the lock when the last holder
exits, SIGKILL included. At start, an instance dir whose lock nobody holds any more is
a leftover and is removed; a held one is left alone. Starts take `tmp/.start.lock`
exclusively, so a new dir is always locked before another start can look at it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

START_LOCK = ".start.lock"
LOCK_SUFFIX = ".lock"


@dataclass(frozen=True, slots=True)
class InstanceDir:
    """This server's own temp dir, and the lock file that marks it as in use.

    Args:
        path: `<data_dir>/tmp/<id>/`, 0700: uploads in flight, metrics of the workers.
        lock: `<data_dir>/tmp/<id>.lock`; holding it (shared) keeps the dir alive.
    """

    path: Path
    lock: Path

    def hold(self) -> int:
        """Take the shared lock (each worker does, beside the parent): the dir stays
        while any process of this server still runs. The descriptor stays open for the
        process's lifetime on purpose."""
        fd = os.open(self.lock, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd


def _unused(lock: Path) -> bool:
    """True if no live process holds `lock` (its owner has exited)."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the probe's lock again
    return True


def remove_leftovers(tmp: Path) -> list[Path]:
    """Remove what exited servers left in `tmp` (under its start lock); what was removed."""
    removed = []
    for entry in sorted(tmp.iterdir()):
        if entry.name == START_LOCK:
            continue
        if entry.suffix == LOCK_SUFFIX:
            if not entry.with_suffix("").exists() and _unused(entry):
                entry.unlink(missing_ok=True)
            continue
        if entry.is_dir() and not _unused(entry.with_name(entry.name + LOCK_SUFFIX)):
            continue  # a live server's uploads
        # a dead server's dir, or a file of a version that staged uploads in tmp/ itself
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        entry.with_name(entry.name + LOCK_SUFFIX).unlink(missing_ok=True)
        removed.append(entry)
    return removed


def claim(data_dir: Path) -> tuple[InstanceDir, int]:
    """Clean `<data_dir>/tmp/` of dead servers' leftovers and make this server's dir.

    Returns the dir and the descriptor of its held lock (kept open while serving).
    """
    tmp = data_dir / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    os.chmod(tmp, 0o700)
    start = os.open(tmp / START_LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(start, fcntl.LOCK_EX)
        remove_leftovers(tmp)
        name = secrets.token_hex(8)
        instance = InstanceDir(tmp / name, tmp / f"{name}{LOCK_SUFFIX}")
        os.close(os.open(instance.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        held = instance.hold()
        instance.path.mkdir(mode=0o700)
    finally:
        os.close(start)
    return instance, held


def release(instance: InstanceDir, held: int) -> None:
    """At a clean stop: remove this server's dir; its lock goes with the last holder."""
    shutil.rmtree(instance.path, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.close(held)
    if _unused(instance.lock):
        instance.lock.unlink(missing_ok=True)
