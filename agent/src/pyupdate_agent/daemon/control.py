"""Starting the daemon and poking a running one: the pid file, SIGUSR1 and SIGUSR2.

`pyupdate check-update` sends SIGUSR1 and `pyupdate send-inventory` SIGUSR2 to
the pid in the pid file, as `mender check-update` / `send-inventory` do with
the daemon's MainPID. One daemon per data dir: a second one refuses to start
while the first is alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from ..config import Config, data_file
from ..errors import AgentError
from .settings import daemon_settings

SIGNALS = {"check-update": signal.SIGUSR1, "send-inventory": signal.SIGUSR2}


class DaemonNotRunning(AgentError):
    """No daemon answers at the pid in the pid file."""


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise AgentError(f"{path}: cannot read pid file ({err.strerror})") from None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_daemon(config: Config, data_dir: Path, verb: str) -> int:
    """Send the verb's signal; returns the daemon's pid."""
    pid_file = pid_file_path(config, data_dir)
    pid = _read_pid(pid_file)
    if pid is None or not _alive(pid):
        raise DaemonNotRunning(f"no running daemon (pid file {pid_file})")
    os.kill(pid, SIGNALS[verb])
    return pid


def pid_file_path(config: Config, data_dir: Path) -> Path:
    return data_file(config, "pid_file", data_dir)


def run_daemon(config: Config, data_dir: Path, reexec: list[str] | None) -> int:
    """Run until killed; refuses to start if another daemon owns the data dir."""
    from .machine import Daemon

    settings = daemon_settings(config, data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pid = _read_pid(settings.pid_file)
    if pid is not None and pid != os.getpid() and _alive(pid):
        raise AgentError(f"a daemon already runs with pid {pid} (pid file {settings.pid_file})")
    # SIGUSR1/2 kill a process that has not blocked them, and `pyupdate check-update`
    # may come as soon as the pid file names us: block them first (the loop waits
    # for them with sigtimedwait; the mask survives the re-exec after an update)
    signal.pthread_sigmask(signal.SIG_BLOCK, set(SIGNALS.values()))
    tmp = settings.pid_file.with_name(settings.pid_file.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, settings.pid_file)
    try:
        Daemon(config, data_dir, settings, reexec=reexec).run()
    finally:
        with contextlib.suppress(OSError):
            if _read_pid(settings.pid_file) == os.getpid():
                settings.pid_file.unlink()
    return 0
