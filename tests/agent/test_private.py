"""private.py: the store (with its WAL and SHM), deployment logs and the device key are
0600 in 0700 directories whatever the umask, and older, looser ones are tightened
(issue 16; docs/agent.md, "Data dir")."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_agent.daemon.identity import DeviceKey
from pyupdate_agent.log import deployment_log
from pyupdate_agent.store import STORE_NAME, Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """umask 0: only modes the agent asks for explicitly can pass."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_store_db_wal_shm_are_0600_in_a_0700_data_dir(tmp_path: Path):
    data = tmp_path / "data"
    store = Store.open(data)
    assert store is not None
    try:
        assert mode(data) == 0o700
        db = data / STORE_NAME
        files = [db, db.with_name(STORE_NAME + "-wal"), db.with_name(STORE_NAME + "-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        store.close()


def test_an_older_loose_store_and_data_dir_are_tightened_on_open(tmp_path: Path):
    data = tmp_path / "data"
    Store.open(data).close()  # type: ignore[union-attr]
    db = data / STORE_NAME
    # another connection keeps the WAL and SHM files in place, as an older agent left them
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("CREATE TABLE t (x)")
    loose = [data, db, db.with_name(STORE_NAME + "-wal"), db.with_name(STORE_NAME + "-shm")]
    for path in loose:
        path.chmod(0o755 if path == data else 0o644)
    try:
        Store.open(data).close()  # type: ignore[union-attr]
        assert [mode(p) for p in loose] == [0o700, 0o600, 0o600, 0o600]
    finally:
        other.close()


def test_deployment_log_is_0600_new_or_old(tmp_path: Path):
    new = tmp_path / "deployments.0000.u1.log"
    with deployment_log(new):
        pass
    old = tmp_path / "deployments.0001.u2.log"
    old.write_text("")
    old.chmod(0o644)
    with deployment_log(old):
        pass
    assert (mode(new), mode(old)) == (0o600, 0o600)


def test_device_key_is_0600_in_a_new_0700_dir_and_an_old_key_is_tightened(tmp_path: Path):
    path = tmp_path / "keys" / "device.pem"
    DeviceKey.load_or_create(path, "ed25519")
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    path.chmod(0o644)
    DeviceKey.load_or_create(path, "ed25519")
    assert mode(path) == 0o600
