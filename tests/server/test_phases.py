"""Phased rollouts (docs/deployments.md, "Phases"), tested on the service, without HTTP."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select, update
from test_rollout import add_artifact, add_device, dep_status, poll, report, row

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Deployment, DeploymentEvent, DeploymentPhase, utcnow
from pyupdate_server.errors import BadRequest, Unprocessable
from pyupdate_server.services import control, creation, phases, rollout
from pyupdate_server.services.phases import PhaseSpec, Threshold

FUTURE = utcnow() + dt.timedelta(days=30)


@pytest.fixture
def db(tmp_path, database_url):
    database = Database(database_url or f"sqlite:///{tmp_path / 'r.db'}")
    database.migrate()
    yield database
    database.dispose()


def fleet(db, n, tag="d"):
    add_artifact(db, "r2")
    return [add_device(db, f"{tag}{i}") for i in range(n)]


def deploy(db, devices, phases=None, **kw):
    with db.write() as s:
        return creation.create_deployment(
            s, name="phased", artifact_name="r2", devices=devices, phase_specs=phases, **kw
        ).id


def events(db, dep_id, kind=None):
    with db.read() as s:
        found = s.scalars(
            select(DeploymentEvent)
            .where(DeploymentEvent.deployment_id == dep_id)
            .order_by(DeploymentEvent.id)
        )
        return [(e.kind, e.phase, e.message) for e in found if kind is None or e.kind == kind]


def deployment(db, dep_id):
    with db.read() as s:
        return s.get(Deployment, dep_id)


def install(db, device, dep_id, result="success"):
    """One device through a whole update, as the Mender 3.4 client reports it."""
    for status in ("downloading", "installing", "rebooting", result):
        report(db, device, dep_id, status)


def start_time_passes(db, dep_id, number):
    with db.write() as s:
        s.execute(
            update(DeploymentPhase)
            .where(DeploymentPhase.deployment_id == dep_id, DeploymentPhase.number == number)
            .values(start_ts=utcnow() - dt.timedelta(seconds=1))
        )


def test_only_the_first_phase_is_handed_out(db):
    # the case: 20 devices and a 25% first phase used to get all 20 at once
    devices = fleet(db, 20)
    dep = deploy(db, devices, [PhaseSpec(batch_size=25), PhaseSpec(start_ts=FUTURE)])
    handed = [d for d in devices if poll(db, d) == dep]
    assert handed == devices[:5]
    assert [p for _, p, _ in events(db, dep, "phase_started")] == [1]
    assert dep_status(db, dep) == "inprogress"


def test_percent_rounds_down_and_the_last_phase_takes_the_rest():
    specs = [PhaseSpec(batch_size=33), PhaseSpec(batch_size=33, start_ts=FUTURE)]
    assert phases.plan([*specs, PhaseSpec(batch_size=34, when_healthy=True)], 10) == [3, 3, 4]
    assert phases.plan([PhaseSpec(batch_count=2), PhaseSpec(when_healthy=True)], 7) == [2, 5]


@pytest.mark.parametrize(
    ("specs", "total", "message"),
    [
        ([], 5, "give at least one phase"),
        ([PhaseSpec(batch_size=60), PhaseSpec(batch_size=60, start_ts=FUTURE)], 10, "120%"),
        ([PhaseSpec(batch_size=50), PhaseSpec(batch_size=40, start_ts=FUTURE)], 10, "not 100%"),
        ([PhaseSpec(batch_size=100), PhaseSpec(start_ts=FUTURE)], 10, "none is left for phase 2"),
        (
            [PhaseSpec(batch_count=8), PhaseSpec(batch_count=8, when_healthy=True)],
            10,
            "add up to 16",
        ),
        (
            [PhaseSpec(batch_size=5), PhaseSpec(when_healthy=True)],
            10,
            "5% of 10 devices is no device",
        ),
        ([PhaseSpec(batch_size=50), PhaseSpec(batch_count=5, start_ts=FUTURE)], 10, "every one in"),
        ([PhaseSpec(batch_size=50), PhaseSpec()], 10, "phase 2: give start_ts"),
        ([PhaseSpec(when_healthy=True)], 10, "phase 1: start_when_healthy needs"),
        ([PhaseSpec(), PhaseSpec(batch_size=10, start_ts=FUTURE)], 10, "only the last phase"),
        (
            [
                PhaseSpec(batch_size=50, start_ts=FUTURE),
                PhaseSpec(start_ts=FUTURE - dt.timedelta(hours=1)),
            ],
            10,
            "phase 2: start_ts is not after phase 1's",
        ),
        ([PhaseSpec(batch_size=0)], 10, "between 1 and 100"),
    ],
)
def test_phases_that_do_not_add_up_are_refused_in_one_line(specs, total, message):
    with pytest.raises(BadRequest, match=message) as err:
        phases.plan(specs, total)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("failure_threshold", None, None), "give count or percent"),
        (("failure_threshold", 2, 20), "not both"),
        (("failure_threshold", None, 101), "between 1 and 100"),
        (("success_threshold", 0, None), "at least 1"),
    ],
)
def test_thresholds_out_of_range_are_refused(args, message):
    with pytest.raises(BadRequest, match=message):
        phases.threshold(*args)


def test_success_threshold_nobody_waits_for_or_can_reach_is_refused(db):
    devices = fleet(db, 10)
    with pytest.raises(BadRequest, match="no phase has start_when_healthy"):
        deploy(
            db,
            devices,
            [PhaseSpec(batch_count=5), PhaseSpec(start_ts=FUTURE)],
            success_threshold=Threshold(90, "percent"),
        )
    with pytest.raises(BadRequest, match="more than phase 1's 5"):
        deploy(
            db,
            devices,
            [PhaseSpec(batch_count=5), PhaseSpec(when_healthy=True)],
            success_threshold=Threshold(6, "count"),
        )
    with pytest.raises(BadRequest, match="give a failure_threshold"):
        deploy(db, devices, failure_action="abort")


def test_later_phase_starts_when_its_start_time_has_passed(db):
    devices = fleet(db, 10)
    dep = deploy(db, devices, [PhaseSpec(batch_count=4), PhaseSpec(start_ts=FUTURE)])
    assert poll(db, devices[4]) is None
    start_time_passes(db, dep, 2)
    # the first poll after the start time decides, once
    assert poll(db, devices[4]) == dep
    assert poll(db, devices[5]) == dep
    started = events(db, dep, "phase_started")
    assert [(p, m.split(": ", 1)[1]) for _, p, m in started] == [
        (1, "started (at once): 4 devices"),
        (2, "started (its start time came): 6 devices"),
    ]


def test_first_phase_with_a_later_start_is_scheduled(db):
    devices = fleet(db, 4)
    dep = deploy(
        db, devices, [PhaseSpec(batch_size=50, start_ts=FUTURE), PhaseSpec(when_healthy=True)]
    )
    assert poll(db, devices[0]) is None
    assert deployment(db, dep).phases_started == 0
    start_time_passes(db, dep, 1)
    assert poll(db, devices[0]) == dep


def test_healthy_phase_starts_the_next_only_on_final_success(db):
    devices = fleet(db, 10)
    dep = deploy(
        db,
        devices,
        [PhaseSpec(batch_count=4), PhaseSpec(when_healthy=True)],
        success_threshold=Threshold(75, "percent"),
    )
    for d in devices[:4]:
        assert poll(db, d) == dep
    install(db, devices[0], dep)
    install(db, devices[1], dep)
    for status in ("downloading", "installing", "rebooting"):
        report(db, devices[2], dep, status)
    # rebooting into the new system is not success: the device has not committed yet
    assert poll(db, devices[4]) is None
    report(db, devices[2], dep, "success")
    assert poll(db, devices[4]) == dep
    kinds = [(k, p) for k, p, _ in events(db, dep)]
    assert kinds == [("phase_started", 1), ("healthy", 1), ("phase_started", 2)]
    assert events(db, dep, "healthy")[0][2] == (
        "phase 1: 3 successes of 4 (75%) >= threshold 75%: healthy"
    )


def test_devices_that_already_run_it_do_not_count_against_health(db):
    devices = fleet(db, 4)
    dep = deploy(db, devices, [PhaseSpec(batch_count=2), PhaseSpec(when_healthy=True)])
    assert poll(db, devices[0], current="r2") is None  # already-installed
    assert poll(db, devices[1]) == dep
    install(db, devices[1], dep)
    assert events(db, dep, "healthy")[0][2].startswith("phase 1: 1 successes of 1 (100%)")
    assert poll(db, devices[2]) == dep


def test_failure_threshold_pauses_the_rollout_by_itself(db):
    devices = fleet(db, 20)
    dep = deploy(
        db,
        devices,
        [PhaseSpec(batch_count=10), PhaseSpec(when_healthy=True)],
        failure_threshold=Threshold(30, "percent"),
        success_threshold=Threshold(90, "percent"),
    )
    for d in devices[:6]:
        assert poll(db, d) == dep
    report(db, devices[5], dep, "downloading")  # in flight when the pause comes
    for d in devices[:3]:
        install(db, d, dep, "failure")
    info = deployment(db, dep)
    assert info.paused and not info.aborted
    assert events(db, dep, "paused") == [
        ("paused", 1, "phase 1: 3 failures of 10 (30%) >= threshold 30%: paused")
    ]
    # no hand-out to a device not yet handed it; the one in flight finishes
    assert poll(db, devices[6]) is None
    assert poll(db, devices[5]) == dep
    install(db, devices[5], dep)
    assert row(db, dep, devices[5]).status == "success"
    assert deployment(db, dep).status == "inprogress"


def test_failure_with_a_retry_left_is_not_a_failure_yet(db):
    devices = fleet(db, 4)
    dep = deploy(db, devices, retries=1, failure_threshold=Threshold(1, "count"))
    assert poll(db, devices[0]) == dep
    install(db, devices[0], dep, "failure")
    assert not deployment(db, dep).paused
    assert poll(db, devices[0]) == dep  # the retry
    install(db, devices[0], dep, "failure")
    assert deployment(db, dep).paused
    assert events(db, dep, "paused")[0][2] == (
        "phase 1: 1 failures of 4 (25%) >= threshold 1: paused"
    )


def test_failure_threshold_can_abort_instead(db):
    devices = fleet(db, 10)
    dep = deploy(
        db,
        devices,
        [PhaseSpec(batch_count=5), PhaseSpec(start_ts=FUTURE)],
        failure_threshold=Threshold(2, "count"),
        failure_action="abort",
    )
    for d in devices[:5]:
        assert poll(db, d) == dep
    for status in ("downloading", "installing"):
        report(db, devices[4], dep, status)  # past the point of no return
    install(db, devices[0], dep, "failure")
    install(db, devices[1], dep, "failure")
    info = deployment(db, dep)
    assert info.aborted and not info.paused
    assert events(db, dep, "aborted")[0][2].endswith(">= threshold 2: aborted")
    assert row(db, dep, devices[2]).status == "aborted"
    assert row(db, dep, devices[9]).status == "aborted"
    assert row(db, dep, devices[4]).status == "installing"
    report(db, devices[4], dep, "success")
    assert dep_status(db, dep) == "finished"


def test_resume_hands_out_again_and_counts_failures_anew(db):
    devices = fleet(db, 10)
    dep = deploy(db, devices, failure_threshold=Threshold(2, "count"))
    for d in devices[:4]:
        poll(db, d)
    install(db, devices[0], dep, "failure")
    install(db, devices[1], dep, "failure")
    assert poll(db, devices[4]) is None
    with db.write() as s:
        control.resume(s, dep, "ops@example.com")
    assert poll(db, devices[4]) == dep
    install(db, devices[2], dep, "failure")
    assert not deployment(db, dep).paused  # one new failure, the threshold is 2
    install(db, devices[3], dep, "failure")
    assert deployment(db, dep).paused
    assert [k for k, _, _ in events(db, dep)] == [
        "phase_started",
        "paused",
        "resumed",
        "paused",
    ]
    assert events(db, dep, "paused")[1][2].startswith("phase 1: 2 failures since the last resume")
    assert events(db, dep, "resumed")[0][2] == "resumed by ops@example.com"


def test_person_pauses_resumes_and_aborts_any_deployment(db):
    devices = fleet(db, 3)
    dep = deploy(db, devices)
    assert poll(db, devices[0]) == dep
    with db.write() as s:
        control.pause(s, dep, "ops@example.com")
    assert poll(db, devices[1]) is None
    assert poll(db, devices[0]) == dep  # in flight: the same again
    with db.write() as s, pytest.raises(Unprocessable, match="already paused"):
        control.pause(s, dep)
    with db.write() as s:
        control.resume(s, dep, "ops@example.com")
    with db.write() as s, pytest.raises(Unprocessable, match="not paused"):
        control.resume(s, dep)
    assert poll(db, devices[1]) == dep
    with db.write() as s:
        control.pause(s, dep)
    with db.write() as s:
        control.abort(s, dep, "ops@example.com")
    assert row(db, dep, devices[2]).status == "aborted"
    assert [k for k, _, _ in events(db, dep)] == ["paused", "resumed", "paused", "aborted"]


def test_paused_deployment_holds_later_deployments_of_its_devices(db):
    devices = fleet(db, 2)
    add_artifact(db, "r3")
    dep = deploy(db, devices)
    with db.write() as s:
        later = creation.create_deployment(s, name="l", artifact_name="r3", devices=devices).id
        control.pause(s, dep)
    # deployments apply in the order they were made: r3 waits until r2 resumes or aborts
    assert poll(db, devices[0]) is None
    with db.write() as s:
        control.abort(s, dep)
    assert poll(db, devices[0]) == later


def test_decommissioned_devices_leave_the_phase_count(db):
    devices = fleet(db, 4)
    dep = deploy(db, devices, [PhaseSpec(batch_count=2), PhaseSpec(when_healthy=True)])
    poll(db, devices[0])
    install(db, devices[0], dep)
    assert poll(db, devices[2]) is None
    with db.write() as s:
        rollout.close_device_deployments(s, devices[1], "decommissioned")
    assert poll(db, devices[2]) == dep


def test_concurrent_failures_pause_once(db):
    devices = fleet(db, 12)
    dep = deploy(db, devices, failure_threshold=Threshold(3, "count"))
    for d in devices:
        poll(db, d)
        for status in ("downloading", "installing", "rebooting"):
            report(db, d, dep, status)
    barrier = threading.Barrier(len(devices))
    errors = []

    def fail(device):
        barrier.wait()
        try:
            report(db, device, dep, "failure")
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fail, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(events(db, dep, "paused")) == 1
    assert dep_status(db, dep) == "finished"
