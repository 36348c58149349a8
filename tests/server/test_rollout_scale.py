"""The hand-out, creation and finish paths made cheaper for large fleets (issue 17,
bench/results/server-scale-2026-12-07b.md) keep the rules of docs/deployments.md: the
same devices, max_devices never exceeded, every deployment finished once, an abort
racing hand-outs ends consistently. Threads on one Database make real concurrent
transactions (on PostgreSQL they run side by side; on SQLite one at a time)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select
from test_rollout import add_artifact, add_device, poll, report

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Deployment, Device, DeviceDeployment
from pyupdate_server.errors import BadRequest
from pyupdate_server.services import control, creation, rollout
from pyupdate_server.services.phases import PhaseSpec


@pytest.fixture
def db(tmp_path, database_url):
    database = Database(database_url or f"sqlite:///{tmp_path / 'r.db'}")
    database.migrate()
    yield database
    database.dispose()


def rows_of(db: Database, dep_id: str) -> list[DeviceDeployment]:
    with db.read() as s:
        return list(
            s.scalars(
                select(DeviceDeployment)
                .where(DeviceDeployment.deployment_id == dep_id)
                .order_by(DeviceDeployment.id)
            )
        )


def create(db: Database, **kw: object) -> str:
    with db.write() as s:
        return creation.create_deployment(s, name="d", artifact_name="r1", **kw).id  # type: ignore[arg-type]


def all_at_once(n: int, work: Callable[[int], None]) -> None:
    """Run work(0..n-1) in n threads released together; re-raise the first error."""
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_group_and_all_made_in_sql_target_the_devices_they_did_before(db):
    canary = [add_device(db, f"c{i}", group="canary") for i in range(3)]
    others = [add_device(db, f"o{i}") for i in range(2)]
    with db.write() as s:
        for name, status in (("p", "pending"), ("r", "rejected")):
            s.add(
                Device(identity=f'{{"mac":"{name}"}}', status=status, inventory={}, group="canary")
            )
    add_artifact(db, "r1")
    group = create(db, group="canary")
    every = create(db, all_devices=True)
    # with phases the rows are still made in Python, one by one: the same devices
    phased = create(db, all_devices=True, phase_specs=[PhaseSpec()])
    listed = create(db, devices=[*others, canary[0]])
    made = {d: [r.device_id for r in rows_of(db, d)] for d in (group, every, phased, listed)}
    # in the order of the devices' creation, as the rows were made before
    assert made[group] == canary
    assert made[every] == made[phased] == [*canary, *others]
    assert made[listed] == [*others, canary[0]]
    for r in rows_of(db, every):
        assert (r.status, r.final, r.attempts, r.claimed, r.phase) == (
            "pending",
            False,
            0,
            None,
            None,
        )
    with db.read() as s:
        counts = {d: s.get(Deployment, d).device_count for d in made}
    assert counts == {group: 3, every: 5, phased: 5, listed: 3}
    # and they are handed out as before
    assert poll(db, canary[1]) == group


def test_an_empty_group_made_in_sql_is_refused_and_leaves_nothing(db):
    add_device(db, "a")
    add_artifact(db, "r1")
    with pytest.raises(BadRequest, match="no devices"):
        create(db, group="nobody")
    with db.read() as s:
        assert s.scalars(select(Deployment)).all() == []


def test_max_devices_holds_under_concurrent_hand_outs(db):
    devices = [add_device(db, f"d{i}") for i in range(12)]
    add_artifact(db, "r1")
    dep = create(db, all_devices=True, max_devices=5)
    got: list[str | None] = [None] * len(devices)

    def one(i: int) -> None:
        got[i] = poll(db, devices[i])

    all_at_once(len(devices), one)
    assert sum(g == dep for g in got) == 5
    statuses = sorted(r.status for r in rows_of(db, dep))
    assert statuses == ["pending"] * 5 + ["skipped"] * 7


def test_concurrent_final_reports_finish_the_deployment_once(db):
    devices = [add_device(db, f"d{i}") for i in range(16)]
    add_artifact(db, "r1")
    dep = create(db, all_devices=True)
    for d in devices:
        assert poll(db, d) == dep
    with db.write() as s:
        assert s.get(Deployment, dep).status == "inprogress"

    def finish(i: int) -> None:
        report(db, devices[i], dep, "downloading")
        report(db, devices[i], dep, "success" if i % 4 else "failure")

    all_at_once(len(devices), finish)
    with db.read() as s:
        d = s.get(Deployment, dep)
        assert (d.status, d.finished is not None) == ("finished", True)
        stats = rollout.statistics(s, dep)
    assert (stats["success"], stats["failure"]) == (12, 4)


def test_abort_racing_hand_outs_leaves_no_device_handed_an_aborted_deployment(db):
    devices = [add_device(db, f"d{i}") for i in range(12)]
    add_artifact(db, "r1")
    dep = create(db, all_devices=True)
    assert poll(db, devices[0]) == dep  # in progress before the abort

    def one(i: int) -> None:
        if i == len(devices):
            with db.write() as s:
                control.abort(s, dep)
        else:
            poll(db, devices[i])

    all_at_once(len(devices) + 1, one)
    rows = rows_of(db, dep)
    # pending (handed or not) is abortable: every row closed, none left handed out
    assert {(r.status, r.final, r.claimed) for r in rows} == {("aborted", True, None)}
    with db.read() as s:
        assert s.get(Deployment, dep).status == "finished"
    for d in devices:
        assert poll(db, d) is None
