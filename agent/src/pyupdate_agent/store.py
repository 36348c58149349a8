"""The agent's record of what is installed and of the update in flight (SQLite).

One file, `<data>/pyupdate-store.sqlite`, in WAL mode with synchronous=FULL: a
transaction that returned is on disk. The phase of an update is written
*before* the phase starts, so after a power cut the next command knows what
might be half done and can finish or undo it (docs/agent.md, "Power loss").
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from .errors import StoreError

STORE_NAME = "pyupdate-store.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS current (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    provides TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inflight (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    update_id TEXT NOT NULL,
    artifact_name TEXT NOT NULL,
    payload_type TEXT NOT NULL,
    phase TEXT NOT NULL,
    supports_rollback INTEGER,
    needs_reboot TEXT,
    old_slot INTEGER,
    new_slot INTEGER,
    new_provides TEXT NOT NULL,
    log_path TEXT NOT NULL,
    started REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    update_id TEXT NOT NULL,
    artifact_name TEXT NOT NULL,
    result TEXT NOT NULL,
    message TEXT NOT NULL,
    finished REAL NOT NULL
);
"""


class Phase(StrEnum):
    """Phases of an update in flight, in the order they are entered.

    DOWNLOAD and INSTALL may be half done when interrupted: recovery undoes them.
    INSTALLED waits for `commit` or `rollback`. COMMIT, ROLLBACK and FAILURE are
    idempotent: recovery runs them again to the end.
    """

    DOWNLOAD = "download"
    INSTALL = "install"
    INSTALLED = "installed"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class InFlight:
    """The update the device is in the middle of.

    Args:
        update_id: random id, also names the deployment log.
        payload_type: `rootfs-image` or an update module's name.
        supports_rollback / needs_reboot: the installer's answers, once asked.
        old_slot / new_slot: partition numbers for rootfs-image, None otherwise.
        new_provides: what the device will provide once committed (computed at install).
    """

    update_id: str
    artifact_name: str
    payload_type: str
    phase: Phase
    new_provides: dict[str, str]
    log_path: str
    supports_rollback: bool | None = None
    needs_reboot: str | None = None
    old_slot: int | None = None
    new_slot: int | None = None
    started: float = 0.0


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    update_id: str
    artifact_name: str
    result: str
    message: str
    finished: float


# Below this, a store error says how little room is left on the data partition.
LOW_SPACE = 1 << 20


def _problem(path: Path, err: sqlite3.Error) -> str:
    """SQLite calls a full disk "database or disk is full" or just "disk I/O error"."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return str(err)
    return f"{err}; {free >> 10} KiB free in {path.parent}" if free < LOW_SPACE else str(err)


def new_update_id() -> str:
    return uuid.uuid4().hex


class Store:
    """Transactions over the store file; each method is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(f"{path}: cannot open the store ({_problem(path, err)})") from None

    @classmethod
    def open(cls, data_dir: Path, create: bool = True) -> Store | None:
        """The store in `data_dir`; None if it does not exist and `create` is False."""
        path = data_dir / STORE_NAME
        if not create and not path.exists():
            return None
        if create:
            try:
                data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(f"{data_dir}: cannot create data dir ({err.strerror})") from None
        return cls(path)

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: {_problem(self.path, err)}") from None

    def current_provides(self) -> dict[str, str] | None:
        rows = self._run("SELECT provides FROM current WHERE id = 1")
        return json.loads(str(rows[0][0])) if rows else None

    def inflight(self) -> InFlight | None:
        rows = self._run(
            "SELECT update_id, artifact_name, payload_type, phase, new_provides, log_path,"
            " supports_rollback, needs_reboot, old_slot, new_slot, started"
            " FROM inflight WHERE id = 1"
        )
        if not rows:
            return None
        r = rows[0]
        return InFlight(
            update_id=str(r[0]),
            artifact_name=str(r[1]),
            payload_type=str(r[2]),
            phase=Phase(r[3]),
            new_provides=json.loads(str(r[4])),
            log_path=str(r[5]),
            supports_rollback=None if r[6] is None else bool(r[6]),
            needs_reboot=None if r[7] is None else str(r[7]),
            old_slot=None if r[8] is None else int(r[8]),  # type: ignore[call-overload]
            new_slot=None if r[9] is None else int(r[9]),  # type: ignore[call-overload]
            started=float(r[10]),  # type: ignore[arg-type]
        )

    def begin(self, update: InFlight) -> InFlight:
        """Record a new update in flight; refuses if one is already recorded."""
        update = replace(update, started=time.time())
        self._tx(
            [
                (
                    "INSERT INTO inflight (id, update_id, artifact_name, payload_type, phase,"
                    " new_provides, log_path, supports_rollback, needs_reboot, old_slot,"
                    " new_slot, started) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        update.update_id,
                        update.artifact_name,
                        update.payload_type,
                        str(update.phase),
                        json.dumps(update.new_provides, sort_keys=True),
                        update.log_path,
                        update.supports_rollback,
                        update.needs_reboot,
                        update.old_slot,
                        update.new_slot,
                        update.started,
                    ),
                )
            ]
        )
        return update

    def update(self, update: InFlight) -> InFlight:
        """Write the in-flight record's changeable fields (phase and answers)."""
        self._tx(
            [
                (
                    "UPDATE inflight SET phase = ?, supports_rollback = ?, needs_reboot = ?"
                    " WHERE id = 1 AND update_id = ?",
                    (
                        str(update.phase),
                        update.supports_rollback,
                        update.needs_reboot,
                        update.update_id,
                    ),
                )
            ]
        )
        return update

    def finish(
        self, update: InFlight, result: str, message: str, provides: dict[str, str] | None
    ) -> None:
        """End the update: history row, new provides (if committed), no update in flight.

        One transaction, so a power cut leaves either the update in flight or
        the finished state, never a committed name with the update still pending.
        """
        stmts: list[tuple[str, tuple[object, ...]]] = [
            ("DELETE FROM inflight WHERE id = 1 AND update_id = ?", (update.update_id,)),
            (
                "INSERT INTO history (update_id, artifact_name, result, message, finished)"
                " VALUES (?, ?, ?, ?, ?)",
                (update.update_id, update.artifact_name, result, message, time.time()),
            ),
        ]
        if provides is not None:
            stmts.append(
                (
                    "INSERT OR REPLACE INTO current (id, provides) VALUES (1, ?)",
                    (json.dumps(provides, sort_keys=True),),
                )
            )
        self._tx(stmts)

    def record_failure(self, update_id: str, artifact_name: str, message: str) -> None:
        """A failure before the update was recorded in flight (bad artifact, depends...)."""
        self._tx(
            [
                (
                    "INSERT INTO history (update_id, artifact_name, result, message, finished)"
                    " VALUES (?, ?, 'failure', ?, ?)",
                    (update_id, artifact_name, message, time.time()),
                )
            ]
        )

    def history(self) -> list[HistoryEntry]:
        rows = self._run(
            "SELECT update_id, artifact_name, result, message, finished FROM history ORDER BY seq"
        )
        return [HistoryEntry(str(a), str(b), str(c), str(d), float(e)) for a, b, c, d, e in rows]  # type: ignore[arg-type]

    def _tx(self, stmts: list[tuple[str, tuple[object, ...]]]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in stmts:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError:
            raise StoreError(f"{self.path}: an update is already recorded in flight") from None
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: {_problem(self.path, err)}") from None
