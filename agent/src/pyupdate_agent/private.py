"""Files only the agent reads: the store, deployment logs, the device key.

They hold what the device installed, its key and its scripts' output, so they
are created 0600 in 0700 directories, whatever the umask; and what an older
agent left readable (0644 store, 0755 data dir) is tightened when next opened
(docs/agent.md, "Data dir").
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) 0700, or tighten it to 0700 if it exists."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if missing, else tighten it to 0600."""
    # never open an existing file: closing any descriptor of an SQLite database
    # drops the locks this process holds on it through another connection
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileExistsError:
        tighten(path, FILE_MODE)
    except OSError:
        pass  # the caller's own open reports it, with its one line


def tighten(path: Path, mode: int) -> None:
    """Take group and other access away from an existing `path`; a missing one is fine."""
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(mode)
