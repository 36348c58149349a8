"""The daemon's persisted record of the deployment in hand: `<data>/daemon-state.json`.

Written (temp file, fsync, rename, fsync of the dir) before each state of an
update runs, so a reboot or a power cut resumes at a known state
(states.RESUME). The update itself (phase, slots, provides) stays in the
agent's SQLite store (store.py); this file adds what only managed mode needs:
the deployment, the failure reason, whether the device rebooted, the commit
deadline and the final status still to report. No record = idle, nothing owed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .client import Deployment
from .states import State

RECORD_NAME = "daemon-state.json"


@dataclass(frozen=True, slots=True)
class Record:
    """Args:
    state: the state about to run (or running).
    deployment: what the server handed out.
    log_path: the deployment log of the update in the store, once recorded.
    reason: why the update failed, reported with the log.
    rebooted: the reboot into the update was started (decides the rollback reboot).
    restarts: agent restarts during Download (each starts the download over).
    commit_deadline: wall-clock time after which an unreachable server means rollback.
    success_reported: the server took `success`: the commit may run.
    aborted: the server answered 409; nothing more is reported.
    final: `success` or `failure` once the update is over and still to report
        (None while it runs, or once reported).
    """

    state: State
    deployment: Deployment
    log_path: str | None = None
    reason: str = ""
    rebooted: bool = False
    restarts: int = 0
    commit_deadline: float | None = None
    success_reported: bool = False
    aborted: bool = False
    final: str | None = None


def record_path(data_dir: Path) -> Path:
    return data_dir / RECORD_NAME


def load_record(data_dir: Path) -> Record | None:
    """The saved record; None if there is none (a torn write cannot exist: see save)."""
    try:
        doc = json.loads(record_path(data_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    fields = dict(doc)
    fields["state"] = State(doc["state"])
    fields["deployment"] = Deployment.from_dict(doc["deployment"])
    return Record(**fields)


def save_record(data_dir: Path, record: Record) -> None:
    doc = asdict(record)
    doc["state"] = str(record.state)
    doc["deployment"] = record.deployment.as_dict()
    path = record_path(data_dir)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _sync_dir(data_dir)


def clear_record(data_dir: Path) -> None:
    path = record_path(data_dir)
    if path.exists():
        path.unlink()
        _sync_dir(data_dir)


def _sync_dir(directory: Path) -> None:
    # the rename is durable only once the directory entry is on disk
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
