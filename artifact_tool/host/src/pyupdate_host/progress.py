"""A progress bar on stderr, drawn only on a terminal; libraries take a callback."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Bar:
    """Call with byte counts; `close()` ends the line. Redraws at most 10 times a second."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self._total = max(total, 1)
        self._label = label
        self._stream = stream or sys.stderr
        self._done = 0
        self._start = time.monotonic()
        self._last = 0.0

    def __call__(self, count: int) -> None:
        self._done += count
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        share = min(self._done / self._total, 1.0)
        width = 30
        filled = int(share * width)
        rate = self._done / max(now - self._start, 1e-6) / (1 << 20)
        self._stream.write(
            f"\r{self._label} [{'#' * filled}{'.' * (width - filled)}] {share:4.0%} {rate:7.1f} MiB/s"
        )
        self._stream.flush()

    def close(self) -> None:
        self._draw(time.monotonic())
        self._stream.write("\n")
        self._stream.flush()


def bar_if_terminal(total: int, label: str, quiet: bool) -> Bar | None:
    if quiet or not sys.stderr.isatty():
        return None
    return Bar(total, label)
