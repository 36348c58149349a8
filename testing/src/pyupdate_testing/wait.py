"""Poll until something is true; on timeout, fail naming what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    what: str, check: Callable[[], T | None], timeout: float, logs: Iterable[Path | str] = ()
) -> T:
    """`check()` every 0.2 s until it returns something truthy, which is returned.

    On timeout: AssertionError naming `what`, with the tail of each of `logs`.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    tails = "".join(
        f"\n--- {p} ---\n{Path(p).read_text()[-3000:]}" for p in logs if Path(p).exists()
    )
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tails}")
