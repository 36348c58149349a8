"""The deployment rules of docs/deployments.md, tested on the service, without HTTP."""

from __future__ import annotations

import threading

import pytest

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Artifact, Deployment, Device, DeviceDeployment
from pyupdate_server.errors import BadRequest, Conflict, Unprocessable
from pyupdate_server.services import control, creation, rollout


@pytest.fixture
def db(tmp_path, database_url):
    database = Database(database_url or f"sqlite:///{tmp_path / 'r.db'}")
    database.migrate()
    yield database
    database.dispose()


def add_device(db, name, group=None):
    with db.write() as s:
        d = Device(identity=f'{{"mac":"{name}"}}', status="accepted", inventory={}, group=group)
        s.add(d)
        s.flush()
        return d.id


def add_artifact(db, name, device_types=("dt",), depends=None):
    with db.write() as s:
        a = Artifact(
            name=name,
            device_types=list(device_types),
            depends=depends or {},
            depends_key=f"{device_types}{depends}",
            provides={"artifact_name": name},
            payload_types=["single-file"],
            size=1,
            sha256="0" * 64,
            blob=f"{name}-{len(device_types)}",
        )
        s.add(a)
        s.flush()
        return a.id


def deploy(db, artifact, devices, **kw):
    with db.write() as s:
        return creation.create_deployment(
            s, name=f"d-{artifact}", artifact_name=artifact, devices=devices, **kw
        ).id


def poll(db, device_id, current="old", device_type="dt", **provides):
    with db.write() as s:
        got = rollout.next_for_device(
            s, device_id, device_type, {"artifact_name": current, **provides}
        )
        return got.deployment.id if got else None


def report(db, device_id, dep_id, status):
    with db.write() as s:
        rollout.report_status(s, device_id, dep_id, status)


def row(db, dep_id, device_id):
    with db.read() as s:
        from sqlalchemy import select

        return s.scalar(
            select(DeviceDeployment).where(
                DeviceDeployment.deployment_id == dep_id, DeviceDeployment.device_id == device_id
            )
        )


def dep_status(db, dep_id):
    with db.read() as s:
        return s.get(Deployment, dep_id).status


def test_device_gets_oldest_unfinished_deployment_first(db):
    dev = add_device(db, "a")
    add_artifact(db, "r1")
    add_artifact(db, "r2")
    first = deploy(db, "r1", [dev])
    deploy(db, "r2", [dev])
    assert poll(db, dev) == first


def test_in_flight_deployment_is_returned_again_never_a_second(db):
    dev = add_device(db, "a")
    add_artifact(db, "r1")
    add_artifact(db, "r2")
    first = deploy(db, "r1", [dev])
    deploy(db, "r2", [dev])
    assert poll(db, dev) == first
    report(db, dev, first, "downloading")
    assert poll(db, dev) == first


def test_next_deployment_after_success(db):
    dev = add_device(db, "a")
    add_artifact(db, "r1")
    add_artifact(db, "r2")
    first = deploy(db, "r1", [dev])
    second = deploy(db, "r2", [dev])
    poll(db, dev)
    report(db, dev, first, "success")
    assert dep_status(db, first) == "finished"
    assert poll(db, dev, current="r1") == second


def test_nothing_due_is_none(db):
    dev = add_device(db, "a")
    assert poll(db, dev) is None


def test_device_type_mismatch_is_noartifact_and_skipped(db):
    dev = add_device(db, "a")
    add_artifact(db, "r1", device_types=("other",))
    dep = deploy(db, "r1", [dev])
    assert poll(db, dev) is None
    assert row(db, dep, dev).status == "noartifact"
    assert dep_status(db, dep) == "finished"


def test_depends_must_match_provides(db):
    dev = add_device(db, "a")
    add_artifact(db, "r2", depends={"artifact_name": ["r1"]})
    dep = deploy(db, "r2", [dev])
    assert poll(db, dev, current="r0") is None
    assert row(db, dep, dev).status == "noartifact"
    dev2 = add_device(db, "b")
    dep2 = deploy(db, "r2", [dev2])
    assert poll(db, dev2, current="r1") == dep2


def test_artifact_matching_the_device_type_is_picked_among_same_name(db):
    dev = add_device(db, "a")
    add_artifact(db, "r1", device_types=("x",))
    wanted = add_artifact(db, "r1", device_types=("dt",))
    deploy(db, "r1", [dev])
    with db.write() as s:
        got = rollout.next_for_device(s, dev, "dt", {"artifact_name": "old"})
        assert got is not None and got.artifact.id == wanted


def test_already_installed_unless_forced(db):
    a, b = add_device(db, "a"), add_device(db, "b")
    add_artifact(db, "r1")
    dep = deploy(db, "r1", [a])
    assert poll(db, a, current="r1") is None
    assert row(db, dep, a).status == "already-installed"
    forced = deploy(db, "r1", [b], force_installation=True)
    assert poll(db, b, current="r1") == forced


def test_deployment_finishes_when_every_device_is_final(db):
    a, b = add_device(db, "a"), add_device(db, "b")
    add_artifact(db, "r1")
    dep = deploy(db, "r1", [a, b])
    assert dep_status(db, dep) == "pending"
    poll(db, a)
    assert dep_status(db, dep) == "inprogress"
    report(db, a, dep, "success")
    assert dep_status(db, dep) == "inprogress"
    poll(db, b)
    report(db, b, dep, "failure")
    assert dep_status(db, dep) == "finished"
    with db.read() as s:
        stats = rollout.statistics(s, dep)
    assert (stats["success"], stats["failure"]) == (1, 1)


def test_abort_stops_devices_not_yet_installing(db):
    a, b, c = add_device(db, "a"), add_device(db, "b"), add_device(db, "c")
    add_artifact(db, "r1")
    dep = deploy(db, "r1", [a, b, c])
    poll(db, a)
    report(db, a, dep, "downloading")
    poll(db, b)
    report(db, b, dep, "installing")
    with db.write() as s:
        control.abort(s, dep)
    assert row(db, dep, a).status == "aborted"
    assert row(db, dep, c).status == "aborted"
    with pytest.raises(Conflict, match="aborted"):
        report(db, a, dep, "installing")
    assert poll(db, c) is None
    # b was installing: it finishes and its result counts
    report(db, b, dep, "success")
    assert row(db, dep, b).status == "success"
    assert dep_status(db, dep) == "finished"


def test_abort_of_finished_deployment_is_refused(db):
    a = add_device(db, "a")
    add_artifact(db, "r1")
    dep = deploy(db, "r1", [a])
    poll(db, a)
    report(db, a, dep, "success")
    with db.write() as s, pytest.raises(Unprocessable):
        control.abort(s, dep)


def test_failure_is_not_offered_again_without_retries(db):
    a = add_device(db, "a")
    add_artifact(db, "r1")
    dep = deploy(db, "r1", [a])
    poll(db, a)
    report(db, a, dep, "failure")
    report(db, a, dep, "failure")  # the client repeats it; harmless
    assert poll(db, a) is None
    assert row(db, dep, a).attempts == 1


def test_failure_is_retried_while_retries_remain(db):
    a = add_device(db, "a")
    add_artifact(db, "r1")
    dep = deploy(db, "r1", [a], retries=1)
    assert poll(db, a) == dep
    report(db, a, dep, "failure")
    assert dep_status(db, dep) == "inprogress"
    assert poll(db, a) == dep
    report(db, a, dep, "failure")
    assert poll(db, a) is None
    assert row(db, dep, a).attempts == 2
    assert row(db, dep, a).final
    assert dep_status(db, dep) == "finished"


def test_max_devices_caps_who_gets_it(db):
    devs = [add_device(db, n) for n in "abc"]
    add_artifact(db, "r1")
    dep = deploy(db, "r1", devs, max_devices=2)
    assert poll(db, devs[2]) == dep
    assert poll(db, devs[0]) == dep
    assert poll(db, devs[1]) is None
    assert row(db, dep, devs[1]).status == "skipped"


def test_group_and_all_target_accepted_devices(db):
    a = add_device(db, "a", group="canary")
    b = add_device(db, "b")
    add_artifact(db, "r1")
    with db.write() as s:
        g = creation.create_deployment(s, name="g", artifact_name="r1", group="canary")
        every = creation.create_deployment(s, name="all", artifact_name="r1", all_devices=True)
        g_count, all_count = g.device_count, every.device_count
    assert (g_count, all_count) == (1, 2)
    assert poll(db, a) is not None
    assert poll(db, b) is not None


def test_create_refuses_unknown_artifact_device_and_empty_target(db):
    a = add_device(db, "a")
    add_artifact(db, "r1")
    with db.write() as s, pytest.raises(Unprocessable, match="no artifact"):
        creation.create_deployment(s, name="x", artifact_name="nope", devices=[a])
    with db.write() as s, pytest.raises(BadRequest, match="unknown device"):
        creation.create_deployment(s, name="x", artifact_name="r1", devices=["zzz"])
    with db.write() as s, pytest.raises(BadRequest, match="no devices"):
        creation.create_deployment(s, name="x", artifact_name="r1", group="empty")


def test_status_for_deployment_not_handed_out_is_refused(db):
    a = add_device(db, "a")
    add_artifact(db, "r1")
    dep = deploy(db, "r1", [a])
    with pytest.raises(Conflict, match="not in progress"):
        report(db, a, dep, "installing")
    with pytest.raises(BadRequest, match="unknown status"):
        report(db, a, dep, "bogus")


def test_decommission_closes_open_device_deployments(db):
    from pyupdate_server.services.admission import decommission

    a = add_device(db, "a")
    add_artifact(db, "r1")
    dep = deploy(db, "r1", [a])
    poll(db, a)
    with db.write() as s:
        decommission(s, a)
    assert row(db, dep, a).status == "decommissioned"
    assert dep_status(db, dep) == "finished"


def test_concurrent_polls_never_hand_one_device_two_deployments(db):
    dev = add_device(db, "a")
    for i in range(5):
        add_artifact(db, f"r{i}")
        deploy(db, f"r{i}", [dev])
    results: list[str | None] = []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        for _ in range(5):
            results.append(poll(db, dev))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    with db.read() as s:
        from sqlalchemy import func, select

        claimed = s.scalar(
            select(func.count()).where(
                DeviceDeployment.device_id == dev, DeviceDeployment.claimed.is_not(None)
            )
        )
    assert claimed == 1


def test_concurrent_status_reports_are_all_recorded(db):
    devs = [add_device(db, f"d{i}") for i in range(16)]
    add_artifact(db, "r1")
    dep = deploy(db, "r1", devs)
    for d in devs:
        poll(db, d)
    threads = [threading.Thread(target=report, args=(db, d, dep, "success")) for d in devs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as s:
        assert rollout.statistics(s, dep)["success"] == 16
    assert dep_status(db, dep) == "finished"
