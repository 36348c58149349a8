"""store.py: one update in flight, phases, atomic finish, history, durability settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pyupdate_agent.errors import StoreError
from pyupdate_agent.store import STORE_NAME, InFlight, Phase, Store


def update(name: str = "r1") -> InFlight:
    return InFlight(
        update_id="u1",
        artifact_name=name,
        payload_type="rootfs-image",
        phase=Phase.DOWNLOAD,
        new_provides={"artifact_name": name},
        log_path="/tmp/log",
        old_slot=2,
        new_slot=3,
    )


def test_open_without_create_returns_none(tmp_path: Path):
    assert Store.open(tmp_path / "data", create=False) is None
    assert not (tmp_path / "data").exists()


def test_store_uses_wal_and_full_sync(tmp_path: Path):
    store = Store.open(tmp_path)
    assert store is not None
    db = sqlite3.connect(tmp_path / STORE_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_inflight_survives_reopen_with_its_phase(tmp_path: Path):
    store = Store.open(tmp_path)
    store.begin(update())
    store.update(_with(store.inflight(), phase=Phase.INSTALLED, supports_rollback=True))
    store.close()
    again = Store.open(tmp_path).inflight()
    assert again.phase == Phase.INSTALLED
    assert again.supports_rollback is True
    assert (again.old_slot, again.new_slot) == (2, 3)
    assert again.new_provides == {"artifact_name": "r1"}


def _with(u: InFlight, **changes) -> InFlight:
    from dataclasses import replace

    return replace(u, **changes)


def test_only_one_update_in_flight(tmp_path: Path):
    store = Store.open(tmp_path)
    store.begin(update())
    with pytest.raises(StoreError, match="already recorded"):
        store.begin(update("r2"))


def test_finish_commits_provides_and_clears_inflight_together(tmp_path: Path):
    store = Store.open(tmp_path)
    u = store.begin(update())
    assert store.current_provides() is None
    store.finish(u, "success", "", {"artifact_name": "r1", "rootfs-image.version": "r1"})
    assert store.inflight() is None
    assert store.current_provides() == {"artifact_name": "r1", "rootfs-image.version": "r1"}
    assert [h.result for h in store.history()] == ["success"]


def test_failed_finish_keeps_previous_provides(tmp_path: Path):
    store = Store.open(tmp_path)
    store.finish(store.begin(update()), "success", "", {"artifact_name": "r1"})
    store.finish(store.begin(_with(update("r2"), update_id="u2")), "failure", "boom", None)
    assert store.current_provides() == {"artifact_name": "r1"}
    assert store.history()[-1].message == "boom"


def test_record_failure_without_inflight(tmp_path: Path):
    store = Store.open(tmp_path)
    store.record_failure("u9", "bad.mender", "signature")
    assert store.history()[0].artifact_name == "bad.mender"
    assert store.inflight() is None


# -- the one record: machine state and update in flight, one transaction -------------


def _deployment():
    from pyupdate_agent.core.record import Deployment

    return Deployment("dep-1", "r1", "http://x/a", ("test-device",))


def test_record_and_update_are_read_and_written_together(tmp_path: Path):
    from pyupdate_agent.core.record import Record
    from pyupdate_agent.core.states import State

    store = Store.open(tmp_path)
    record = Record(State.DOWNLOAD, deployment=_deployment(), restarts=1)
    store.save(record)
    u = store.begin(update(), _with(record, log_path="/tmp/log"))
    store.save(
        _with(store.load(), state=State.ARTIFACT_INSTALL, update=_with(u, phase=Phase.INSTALL))
    )
    store.close()
    again = Store.open(tmp_path).load()
    assert again.state == State.ARTIFACT_INSTALL and again.update.phase == Phase.INSTALL
    assert again.deployment == _deployment() and again.log_path == "/tmp/log"
    assert again.restarts == 1


def test_finish_keeps_the_result_still_to_report_or_drops_the_record(tmp_path: Path):
    from pyupdate_agent.core.record import Record
    from pyupdate_agent.core.states import State

    store = Store.open(tmp_path)
    record = Record(State.CLEANUP, deployment=_deployment())
    u = store.begin(update(), record)
    store.finish(u, "success", "", {"artifact_name": "r1"}, _with(record, final="success"))
    kept = store.load()
    assert kept.update is None and kept.final == "success"
    assert store.current_provides() == {"artifact_name": "r1"}
    store.clear()
    assert store.load() is None


def test_the_old_daemon_json_record_is_imported_once(tmp_path: Path):
    import json

    from pyupdate_agent.core.states import State

    doc = {
        "state": "ArtifactReboot",
        "deployment": {"id": "dep-1", "artifact_name": "r1", "uri": "http://x/a",
                       "device_types": ["test-device"]},
        "log_path": "/tmp/log", "reason": "", "rebooted": True, "restarts": 0,
        "commit_deadline": None, "success_reported": False, "aborted": False, "final": None,
    }  # fmt: skip
    (tmp_path / "daemon-state.json").write_text(json.dumps(doc))
    old = sqlite3.connect(tmp_path / STORE_NAME)  # a store of schema 0, with its update
    old.executescript(
        "CREATE TABLE inflight (id INTEGER PRIMARY KEY CHECK (id = 1), update_id TEXT NOT NULL,"
        " artifact_name TEXT NOT NULL, payload_type TEXT NOT NULL, phase TEXT NOT NULL,"
        " supports_rollback INTEGER, needs_reboot TEXT, old_slot INTEGER, new_slot INTEGER,"
        " new_provides TEXT NOT NULL, log_path TEXT NOT NULL, started REAL NOT NULL);"
        "INSERT INTO inflight VALUES (1, 'u1', 'r1', 'rootfs-image', 'installed', 1, 'Yes',"
        " 2, 3, '{\"artifact_name\": \"r1\"}', '/tmp/log', 0);"
    )
    old.close()
    store = Store.open(tmp_path)
    record = store.load()
    assert record.state == State.ARTIFACT_REBOOT and record.rebooted
    assert record.deployment == _deployment() and record.update.phase == Phase.INSTALLED
    assert not (tmp_path / "daemon-state.json").exists()
    store.clear()
    store.close()
    # imported once: a stale file (a crash before it was removed) is not imported again
    (tmp_path / "daemon-state.json").write_text(json.dumps(doc))
    again = Store.open(tmp_path).load()
    assert again.deployment is None and again.state == State.INSTALLED  # from the phase alone
    assert not (tmp_path / "daemon-state.json").exists()
