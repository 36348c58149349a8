"""Delta jobs on the service, without HTTP (services/delta_jobs.py): which deltas a new
deployment asks for, a hand-out asking for a missing one, claiming once, the cache bound."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Artifact, DeltaJob, Device, DeviceDeployment
from pyupdate_server.services import creation, delta_jobs, rollout

DT = "qemux86-64"
PYUPDATE = {"pyupdate_version": "0.1.0", "update_modules": ["rootfs-image", "pyupdate-delta"]}


def sha(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def db(tmp_path, database_url):
    database = Database(database_url or f"sqlite:///{tmp_path / 'j.db'}")
    database.migrate()
    yield database
    database.dispose()


def add_device(db, name, checksum=None, inventory=PYUPDATE):
    with db.write() as s:
        inv = dict(inventory)
        if checksum is not None:
            inv["rootfs-image.checksum"] = checksum
        d = Device(identity=f'{{"mac":"{name}"}}', status="accepted", inventory=inv)
        s.add(d)
        s.flush()
        return d.id


def add_artifact(
    db, name, checksum, *, device_types=(DT,), delta_from=None, size=1000, generated=False
):
    with db.write() as s:
        depends = {"rootfs-image.checksum": delta_from} if delta_from else {}
        a = Artifact(
            name=name,
            device_types=list(device_types),
            depends=depends,
            depends_key=f"{device_types}{depends}",
            provides={"artifact_name": name, "rootfs-image.checksum": checksum},
            payload_types=["pyupdate-delta" if delta_from else "rootfs-image"],
            size=size,
            sha256="0" * 64,
            blob=f"{name}-{checksum[-4:]}-{delta_from or ''}"[:200],
            generated=generated,
        )
        s.add(a)
        s.flush()
        return a.id


def deploy(db, artifact, devices):
    with db.write() as s:
        return creation.create_deployment(s, name="d", artifact_name=artifact, devices=devices).id


def jobs(db):
    with db.read() as s:
        return sorted((j.old_checksum, j.status) for j in s.scalars(select(DeltaJob)).all())


def test_a_new_deployment_asks_for_deltas_from_its_most_common_images(db):
    for n in (1, 2, 3, 4):
        add_artifact(db, f"r{n}", sha(n))
    add_artifact(db, "other-type", sha(9), device_types=("raspberrypi4",))
    new = add_artifact(db, "r5", sha(5))
    # image 1 on three devices, 2 on two, 3 and 9 on one, 4 on none; one reports nothing
    devices = [add_device(db, f"a{i}", sha(1)) for i in range(3)]
    devices += [add_device(db, f"b{i}", sha(2)) for i in range(2)]
    devices += [add_device(db, "c", sha(3)), add_device(db, "x", sha(9)), add_device(db, "n")]
    dep = deploy(db, "r5", devices)
    with db.write() as s:
        assert delta_jobs.plan(s, dep, "r5", bases=2) == 2
    assert jobs(db) == [(sha(1), "queued"), (sha(2), "queued")]
    with db.write() as s:  # asked again (another process): nothing twice
        delta_jobs.plan(s, dep, "r5", bases=5)
    # image 9 is only held for another device type: no job
    assert jobs(db) == [(sha(1), "queued"), (sha(2), "queued"), (sha(3), "queued")]
    with db.read() as s:
        assert {j.new_artifact_id for j in s.scalars(select(DeltaJob))} == {new}


def test_a_hand_out_of_the_full_artifact_asks_for_the_missing_delta_once(db):
    add_artifact(db, "r1", sha(1))
    add_artifact(db, "r2", sha(2))
    ours = add_device(db, "ours", sha(1))
    mender = add_device(db, "mender", sha(1), inventory={"update_modules": ["rootfs-image"]})
    deploy(db, "r2", [ours, mender])
    provides = {"artifact_name": "r1", "rootfs-image.checksum": sha(1)}
    with db.write() as s:
        got = rollout.next_for_device(s, mender, DT, provides)
        assert got is not None and got.full is None
    assert jobs(db) == []  # nobody who could use it asked
    for _ in range(2):  # handed out again while in flight: still one job
        with db.write() as s:
            got = rollout.next_for_device(s, ours, DT, provides)
            assert got is not None and got.artifact.payload_types == ["rootfs-image"]
    assert jobs(db) == [(sha(1), "queued")]


def test_a_delta_job_is_claimed_once_and_taken_over_when_its_lease_runs_out(db):
    import datetime as dt

    add_artifact(db, "r1", sha(1))
    new = add_artifact(db, "r2", sha(2))
    with db.write() as s:
        delta_jobs.enqueue(s, new, sha(1))
    with db.write() as s:
        first = delta_jobs.claim(s, timeout=60)
    with db.write() as s:
        assert delta_jobs.claim(s, timeout=60) is None  # leased
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1)
    with db.write() as s:
        second = delta_jobs.claim(s, timeout=60, now=later)  # the first process died
    assert first is not None and second is not None and second.attempt == 2
    with db.write() as s:  # the first one's result comes too late: not recorded
        assert not delta_jobs.finish(s, first, "failed", error="late")
        assert delta_jobs.finish(s, second, "not_smaller", error="not\nsmaller")
    with db.read() as s:
        job = s.scalars(select(DeltaJob)).one()
        assert (job.status, job.error) == ("not_smaller", "not smaller")


def test_after_three_lost_claims_a_job_is_failed(db):
    import datetime as dt

    new = add_artifact(db, "r2", sha(2))
    with db.write() as s:
        delta_jobs.enqueue(s, new, sha(1))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for hour in range(delta_jobs.MAX_ATTEMPTS + 1):
        with db.write() as s:
            delta_jobs.claim(s, timeout=60, now=now + dt.timedelta(hours=hour))
    assert jobs(db) == [(sha(1), "failed")]


def test_processes_claiming_at_once_skip_each_others_job(db):
    """PostgreSQL: a claim skips a job another transaction holds (FOR UPDATE SKIP LOCKED)
    instead of waiting for it, and takes the next one."""
    if db.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time: there is no other to skip")
    new = add_artifact(db, "r2", sha(2))
    with db.write() as s:
        delta_jobs.enqueue(s, new, sha(1))
        delta_jobs.enqueue(s, new, sha(3))
    claimed: list[object] = []
    holding, done = threading.Event(), threading.Event()

    def first() -> None:
        with db.write() as s:
            claimed.append(delta_jobs.claim(s, timeout=60))
            holding.set()
            done.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(30)
    with db.write() as s:
        other = delta_jobs.claim(s, timeout=60)
    done.set()
    thread.join()
    assert other is not None and claimed[0] is not None
    assert {other.old_checksum, claimed[0].old_checksum} == {sha(1), sha(3)}  # type: ignore[attr-defined]


def test_the_cache_evicts_the_oldest_generated_deltas_not_those_in_flight(db):
    add_artifact(db, "r1", sha(1))
    add_artifact(db, "r2", sha(2))
    oldest = add_artifact(db, "r2", sha(2), delta_from=sha(7), size=400, generated=True)
    in_flight = add_artifact(db, "r2", sha(2), delta_from=sha(8), size=400, generated=True)
    newest = add_artifact(db, "r2", sha(2), delta_from=sha(1), size=400, generated=True)
    uploaded = add_artifact(db, "r2", sha(2), delta_from=sha(6), size=5000)
    device = add_device(db, "d", sha(8))
    deploy(db, "r2", [device])
    with db.write() as s:
        s.execute(
            DeviceDeployment.__table__.update().values(
                artifact_id=in_flight, claimed=DeviceDeployment.created
            )
        )
        for n, delta in ((7, oldest), (8, in_flight), (1, newest)):
            s.add(
                DeltaJob(
                    new_artifact_id=uploaded, old_checksum=sha(n), status="done",
                    delta_artifact_id=delta,
                )
            )  # fmt: skip
    with db.write() as s:
        gone = delta_jobs.evict(s, cache_bytes=500, keep=newest)
    assert len(gone) == 1  # the oldest was enough to get under the bound
    with db.read() as s:
        left = set(s.scalars(select(Artifact.id)))
        assert oldest not in left and {in_flight, newest, uploaded} <= left
        assert {j.old_checksum for j in s.scalars(select(DeltaJob))} == {sha(8), sha(1)}
