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
