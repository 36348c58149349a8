"""A child in its own process group: the one runner of update modules and state scripts.

The child leads a new session with stdin `/dev/null`, so a timeout ends it and
everything it started. stdout and stderr are read line by line on two threads
and handed to `on_line` as they come (the deployment log, or a module's query
answer): at most `output_limit` bytes a stream and LINE_MAX a line are passed
on, the rest is read and dropped, so a chatty child neither blocks on a full
pipe nor fills the agent's memory. A watchdog ends the group at `timeout`:
SIGTERM, then SIGKILL `grace` seconds later (grace 0: SIGKILL at once, the
state scripts' rule; update modules get 60 s, mender's).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

LINE_MAX = 64 * 1024
PUMP_JOIN = 5.0  # seconds for the rest of the output once the child has ended

OnLine = Callable[[str, str], None]
"""Gets ("stdout" or "stderr", one line without its line end)."""


class GroupProcess:
    """One running child. Starting it raises OSError when it cannot run.

    Args:
        argv: the command, argv[0] the executable.
        timeout: seconds from the start until the watchdog ends the group.
        on_line: called from the reader threads for every output line.
        grace: seconds between SIGTERM and SIGKILL; 0 sends SIGKILL at once.
        cwd: working directory; None keeps the agent's.
        output_limit: bytes of each stream passed to `on_line`; None passes all.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        timeout: float,
        on_line: OnLine,
        grace: float = 0.0,
        cwd: Path | None = None,
        output_limit: int | None = None,
    ) -> None:
        self.timed_out = False
        self._grace = grace
        self._proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._pumps = [
            threading.Thread(target=_pump, args=(pipe, name, on_line, output_limit), daemon=True)
            for pipe, name in ((self._proc.stdout, "stdout"), (self._proc.stderr, "stderr"))
        ]
        for pump in self._pumps:
            pump.start()
        self._done = threading.Event()
        threading.Thread(target=self._watch, args=(timeout,), daemon=True).start()

    def _watch(self, timeout: float) -> None:
        # a child that has ended is not timed out, even if the caller is still busy
        # (a module that exits early in Download while its files are written)
        if not self._done.wait(timeout) and self.alive():
            self.expire()

    def expire(self) -> None:
        """End the group because it ran out of time: `timed_out` is set first."""
        self.timed_out = True
        self.kill()

    def kill(self) -> None:
        """End the group: SIGTERM and up to `grace` seconds for the child, then SIGKILL."""
        if self._grace > 0:
            _signal_group(self._proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=self._grace)
        # children that ignored SIGTERM must not outlive the leader either
        _signal_group(self._proc.pid, signal.SIGKILL)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def wait(self) -> int:
        """The exit code (negative: the signal) once the child has ended and its output
        is read; a grandchild that keeps the pipes open is not waited for."""
        code = self._proc.wait()
        self._done.set()
        deadline = time.monotonic() + PUMP_JOIN
        for pump in self._pumps:
            pump.join(timeout=max(0.0, deadline - time.monotonic()))
        return code


def _pump(pipe: BinaryIO, stream: str, on_line: OnLine, limit: int | None) -> None:
    passed = 0
    with pipe:
        while raw := pipe.readline(LINE_MAX):
            if limit is not None:
                if passed >= limit:
                    continue
                raw = raw[: limit - passed]
                passed += len(raw)
            on_line(stream, raw.decode("utf-8", "replace").rstrip("\r\n"))


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
