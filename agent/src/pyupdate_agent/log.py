"""Logging: quiet text on a terminal, JSON lines when asked, and the deployment log.

Facts go in fields (`extra={"state": ..., "slot": ...}`), not in prose. During an
update every record of the agent (module and script output included) is also
appended to `<data>/deployments.NNNN.<update_id>.log` as JSON lines, mender's
name and format, the newest five kept.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyupdate_artifact.printable import printable

from .private import private_file

ROOT = "pyupdate_agent"
KEEP_LOGS = 5
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        entry.update(
            {
                k: v if isinstance(v, int | float | bool) else str(v)
                for k, v in _fields(record).items()
            }
        )
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        # messages quote artifact names and scripts' output: no raw escapes on a terminal
        return printable(f"{line} ({extra})" if extra else line)


def setup_logging(level: str = "warning", json_lines: bool = False) -> None:
    """stderr handler for the agent's loggers; warning by default so success is silent."""
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        if getattr(handler, "_pyupdate_console", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._pyupdate_console = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.setLevel(level.upper())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


def new_log_path(data_dir: Path, update_id: str) -> Path:
    """Next `deployments.NNNN.<id>.log`, dropping the oldest beyond KEEP_LOGS."""
    pattern = re.compile(r"deployments\.(\d{4})\..+\.log$")
    found = sorted(
        (int(m.group(1)), p)
        for p in data_dir.glob("deployments.*.log")
        if (m := pattern.match(p.name))
    )
    for _, path in found[: max(0, len(found) - KEEP_LOGS + 1)]:
        path.unlink(missing_ok=True)
    seq = (found[-1][0] + 1) % 10000 if found else 0
    return data_dir / f"deployments.{seq:04d}.{update_id}.log"


@contextmanager
def deployment_log(path: Path) -> Iterator[None]:
    """Append everything the agent logs at info or above to `path` while inside."""
    logger = logging.getLogger(ROOT)
    private_file(path)  # scripts' and modules' output: for root's eyes only
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
