"""A real small filesystem for full-disk tests: a tmpfs mount (needs root), filled on demand.

Every ENOSPC such a test meets is the kernel's, so SQLite, the spool and the store all
see exactly what they would on a device or a server whose disk ran out.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def tmpfs(mnt: Path, size: str) -> Iterator[Path]:
    """`mnt` (created) as a tmpfs of `size` (mount's syntax: "1m", "40m") while in the block."""
    mnt.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the filesystem of `folder` to the last page, then give back `leave` bytes.

    Returns the filler file; unlinking it makes the room again.
    """
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as fh:  # unbuffered: nothing left to flush on close
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    os.truncate(filler, max(filler.stat().st_size - leave, 0))
    return filler
