"""The agent's one record: what is installed, the update in flight and the machine's state (SQLite).

One file, `<data>/pyupdate-store.sqlite`, in WAL mode with synchronous=FULL: a
transaction that returned is on disk. The state of the machine (`machine`
row) and the update it acts on (`inflight` row) are written in one
transaction before the state runs, so after a power cut the next start reads
one record and knows what might be half done (docs/agent.md, "Power loss").

Schema versions (`PRAGMA user_version`): 0 = current, inflight, history (no
machine row: the daemon kept `<data>/daemon-state.json`); 2 = the `machine`
row. Opening a version 0 store imports `daemon-state.json` once into the
machine row and removes the file, so a device updated mid-deployment keeps its
place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from .core.names import State
from .core.record import Deployment, InFlight, Phase, Record
from .errors import StoreError
from .private import FILE_MODE, private_dir, private_file, tighten

__all__ = ["STORE_NAME", "HistoryEntry", "InFlight", "Phase", "Record", "Store", "new_update_id"]

log = logging.getLogger(__name__)

STORE_NAME = "pyupdate-store.sqlite"
SCHEMA_VERSION = 2
LEGACY_RECORD = "daemon-state.json"  # the daemon's record before schema 2

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
CREATE TABLE IF NOT EXISTS machine (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    deployment TEXT,
    log_path TEXT,
    reason TEXT NOT NULL,
    rebooted INTEGER NOT NULL,
    restarts INTEGER NOT NULL,
    retry INTEGER NOT NULL,
    commit_deadline REAL,
    success_reported INTEGER NOT NULL,
    aborted INTEGER NOT NULL,
    final TEXT
);
"""

_MACHINE_COLUMNS = (
    "state, deployment, log_path, reason, rebooted, restarts, retry, commit_deadline,"
    " success_reported, aborted, final"
)
_INFLIGHT_COLUMNS = (
    "update_id, artifact_name, payload_type, phase, new_provides, log_path,"
    " supports_rollback, needs_reboot, old_slot, new_slot, started"
)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    update_id: str
    artifact_name: str
    result: str
    message: str
    finished: float


# Below this, a store error says how little room is left on the data partition.
LOW_SPACE = 1 << 20

Statement = tuple[str, tuple[object, ...]]


def _problem(path: Path, err: sqlite3.Error) -> str:
    """SQLite calls a full disk "database or disk is full" or just "disk I/O error"."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return str(err)
    return f"{err}; {free >> 10} KiB free in {path.parent}" if free < LOW_SPACE else str(err)


def new_update_id() -> str:
    return uuid.uuid4().hex


def _inflight_from_row(r: tuple[object, ...]) -> InFlight:
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


def _record_from_row(r: tuple[object, ...], update: InFlight | None) -> Record:
    return Record(
        state=State(r[0]),
        update=update,
        deployment=None if r[1] is None else Deployment.from_dict(json.loads(str(r[1]))),
        log_path=None if r[2] is None else str(r[2]),
        reason=str(r[3]),
        rebooted=bool(r[4]),
        restarts=int(r[5]),  # type: ignore[call-overload]
        retry=bool(r[6]),
        commit_deadline=None if r[7] is None else float(r[7]),  # type: ignore[arg-type]
        success_reported=bool(r[8]),
        aborted=bool(r[9]),
        final=None if r[10] is None else str(r[10]),
    )


def _machine_upsert(record: Record) -> Statement:
    deployment = record.deployment
    return (
        f"INSERT OR REPLACE INTO machine (id, {_MACHINE_COLUMNS})"
        " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(record.state),
            None if deployment is None else json.dumps(deployment.as_dict(), sort_keys=True),
            record.log_path,
            record.reason,
            record.rebooted,
            record.restarts,
            record.retry,
            record.commit_deadline,
            record.success_reported,
            record.aborted,
            record.final,
        ),
    )


def _inflight_insert(update: InFlight) -> Statement:
    return (
        f"INSERT INTO inflight (id, {_INFLIGHT_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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


def _inflight_update(update: InFlight) -> Statement:
    return (
        "UPDATE inflight SET phase = ?, supports_rollback = ?, needs_reboot = ?"
        " WHERE id = 1 AND update_id = ?",
        (str(update.phase), update.supports_rollback, update.needs_reboot, update.update_id),
    )


class Store:
    """Transactions over the store file; each method is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # SQLite gives the -wal and -shm files the database's mode: 0600 for all three
        private_file(path)
        for suffix in ("-wal", "-shm"):
            tighten(path.with_name(path.name + suffix), FILE_MODE)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(f"{path}: cannot open the store ({_problem(path, err)})") from None
        self._migrate()

    @classmethod
    def open(cls, data_dir: Path, create: bool = True) -> Store | None:
        """The store in `data_dir`; None if it does not exist and `create` is False."""
        path = data_dir / STORE_NAME
        if not create and not path.exists():
            return None
        if create:
            try:
                private_dir(data_dir)
            except OSError as err:
                raise StoreError(f"{data_dir}: cannot create data dir ({err.strerror})") from None
        return cls(path)

    def close(self) -> None:
        self._db.close()

    # -- schema ---------------------------------------------------------------
    def _migrate(self) -> None:
        """Schema 0 -> 2: import the daemon's JSON record once, in the version's transaction."""
        legacy = self.path.parent / LEGACY_RECORD
        version = int(self._run("PRAGMA user_version")[0][0])  # type: ignore[call-overload]
        if version < SCHEMA_VERSION:
            stmts: list[Statement] = []
            record = _legacy_record(legacy)
            if record is not None and not self._run("SELECT 1 FROM machine WHERE id = 1"):
                stmts.append(_machine_upsert(record))
            stmts.append((f"PRAGMA user_version = {SCHEMA_VERSION}", ()))
            self._tx(stmts)
        if legacy.exists():  # imported (now or by an earlier start that died before this)
            with contextlib.suppress(OSError):
                legacy.unlink()
                _sync_dir(self.path.parent)

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: {_problem(self.path, err)}") from None

    # -- reading --------------------------------------------------------------
    def current_provides(self) -> dict[str, str] | None:
        rows = self._run("SELECT provides FROM current WHERE id = 1")
        return json.loads(str(rows[0][0])) if rows else None

    def inflight(self) -> InFlight | None:
        rows = self._run(f"SELECT {_INFLIGHT_COLUMNS} FROM inflight WHERE id = 1")
        return _inflight_from_row(rows[0]) if rows else None

    def load(self) -> Record | None:
        """The one record (machine state and update in flight, read together); None if idle.

        An update in flight without a machine row was recorded by an older agent
        (standalone): its state follows from its phase.
        """
        try:
            self._db.execute("BEGIN")
            try:
                machine = self._db.execute(
                    f"SELECT {_MACHINE_COLUMNS} FROM machine WHERE id = 1"
                ).fetchall()
                inflight = self._db.execute(
                    f"SELECT {_INFLIGHT_COLUMNS} FROM inflight WHERE id = 1"
                ).fetchall()
            finally:
                self._db.execute("COMMIT")
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: {_problem(self.path, err)}") from None
        update = _inflight_from_row(inflight[0]) if inflight else None
        if machine:
            return _record_from_row(machine[0], update)
        return None if update is None else Record.from_phase(update)

    def history(self) -> list[HistoryEntry]:
        rows = self._run(
            "SELECT update_id, artifact_name, result, message, finished FROM history ORDER BY seq"
        )
        return [HistoryEntry(str(a), str(b), str(c), str(d), float(e)) for a, b, c, d, e in rows]  # type: ignore[arg-type]

    # -- writing: each call is one transaction ---------------------------------
    def save(self, record: Record) -> None:
        """Write the record: the machine row and the update's phase and answers, together."""
        stmts = [_machine_upsert(record)]
        if record.update is not None:
            stmts.append(_inflight_update(record.update))
        self._tx(stmts)

    def clear(self) -> None:
        """Nothing in hand any more: drop the machine row."""
        self._tx([("DELETE FROM machine WHERE id = 1", ())])

    def begin(self, update: InFlight, record: Record | None = None) -> InFlight:
        """Record a new update in flight (with the machine's record); refuses if one is."""
        update = replace(update, started=time.time())
        stmts = [_inflight_insert(update)]
        if record is not None:
            stmts.append(_machine_upsert(replace(record, update=update)))
        self._tx(stmts)
        return update

    def drop_update(self, update: InFlight, record: Record) -> Record:
        """Forget `update` (nothing of it was written) and keep the machine's `record`, in
        one transaction: a delta whose base did not match, replaced by the full artifact."""
        record = replace(record, update=None)
        self._tx(
            [
                ("DELETE FROM inflight WHERE id = 1 AND update_id = ?", (update.update_id,)),
                _machine_upsert(record),
            ]
        )
        return record

    def update(self, update: InFlight) -> InFlight:
        """Write the in-flight record's changeable fields (phase and answers)."""
        self._tx([_inflight_update(update)])
        return update

    def finish(
        self,
        update: InFlight,
        result: str,
        message: str,
        provides: dict[str, str] | None,
        record: Record | None = None,
    ) -> None:
        """End the update: history row, new provides (if committed), no update in flight,
        and the machine's record kept (`record`, e.g. a result still to report) or dropped.

        One transaction, so a power cut leaves either the update in flight or
        the finished state, never a committed name with the update still pending.
        """
        stmts: list[Statement] = [
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
        if record is None:
            stmts.append(("DELETE FROM machine WHERE id = 1", ()))
        else:
            stmts.append(_machine_upsert(replace(record, update=None)))
        self._tx(stmts)

    def record_first_provides(self, provides: dict[str, str]) -> bool:
        """The device's first provides (bootstrap.py), only while it has none: False
        when another process recorded some first."""
        before = self._db.total_changes
        self._tx(
            [
                (
                    "INSERT OR IGNORE INTO current (id, provides) VALUES (1, ?)",
                    (json.dumps(provides, sort_keys=True),),
                )
            ]
        )
        return self._db.total_changes > before

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

    def _tx(self, stmts: list[Statement]) -> None:
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


def _legacy_record(path: Path) -> Record | None:
    """`daemon-state.json` as the daemon wrote it before schema 2 (temp file + rename,
    so never torn); None if there is none or it cannot be read."""
    try:
        return Record.from_legacy(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as err:
        log.warning("%s: cannot import the old daemon record (%s); ignored", path, err)
        return None


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
