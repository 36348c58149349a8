"""Named build steps in a scratch directory that disappears on failure.

Every step writes into one temp dir beside the output; only when all steps
succeed are the products renamed into place. A failure (or Ctrl-C) at any
step therefore leaves no half-written disk image behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    run: Callable[[Path], None]


@dataclass(frozen=True, slots=True)
class StepTiming:
    name: str
    seconds: float


def run_steps(
    steps: Iterable[Step], out_dir: Path, products: Iterable[str]
) -> tuple[list[Path], list[StepTiming]]:
    """Run `steps` in a scratch dir, then move `products` (names in it) to `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".pyupdate-image-", dir=out_dir))
    timings = []
    try:
        for step in steps:
            started = time.monotonic()
            log.info("step %s", step.name)
            step.run(scratch)
            timings.append(StepTiming(step.name, time.monotonic() - started))
        moved = []
        for name in products:
            target = out_dir / name
            os.replace(scratch / name, target)
            moved.append(target)
        return moved, timings
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
