"""Start and end times and install windows (docs/deployments.md §10), on both engines."""

from __future__ import annotations

import datetime as dt

import pytest
from server_helpers import accept, make_device, upload
from test_rollout import add_artifact, add_device, deploy, poll, report, row

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Deployment, utcnow
from pyupdate_server.errors import BadRequest
from pyupdate_server.services import rollout
from pyupdate_server.services.phases import PhaseSpec
from pyupdate_testing.artifacts import write_test_artifact

MGMT = "/api/management/v1/deployments/deployments"
NEXT = "/api/devices/v1/deployments/device/deployments/next"
PARAMS = {"artifact_name": "base", "device_type": "qemux86-64"}


@pytest.fixture
def db(tmp_path, database_url):
    database = Database(database_url or f"sqlite:///{tmp_path / 's.db'}")
    database.migrate()
    yield database
    database.dispose()


def move(db, dep, **times):
    """The clock moves on: set a deployment's times relative to now."""
    with db.write() as s:
        d = s.get(Deployment, dep)
        for name, delta in times.items():
            setattr(d, name, utcnow() + delta)


HOUR = dt.timedelta(hours=1)


def test_nothing_is_handed_out_before_the_start(db):
    add_artifact(db, "r1")
    add_artifact(db, "r2")
    dev = add_device(db, "a")
    dep = deploy(db, "r1", [dev], start_ts=utcnow() + HOUR)
    later = deploy(db, "r2", [dev])
    assert poll(db, dev) is None  # and the later deployment waits behind it
    assert row(db, later, dev).attempts == 0
    move(db, dep, start_ts=-HOUR)
    assert poll(db, dev) == dep


def test_after_the_end_no_new_device_is_handed_it_and_those_in_flight_finish(db):
    add_artifact(db, "r1")
    early, late = add_device(db, "early"), add_device(db, "late")
    dep = deploy(db, "r1", [early, late], end_ts=utcnow() + HOUR)
    assert poll(db, early) == dep
    report(db, early, dep, "downloading")
    move(db, dep, end_ts=-HOUR)
    assert poll(db, late) is None
    assert row(db, dep, late).status == "skipped"
    assert poll(db, early) == dep  # in flight: the same deployment again
    report(db, early, dep, "success")
    with db.read() as s:
        assert s.get(Deployment, dep).status == "finished"


def test_a_management_read_closes_what_the_end_left(db):
    add_artifact(db, "r1")
    devs = [add_device(db, f"d{i}") for i in range(3)]
    dep = deploy(db, "r1", devs, end_ts=utcnow() + HOUR, retries=1)
    assert poll(db, devs[0]) == dep
    report(db, devs[0], dep, "failure")  # a retry left: open, not handed
    move(db, dep, end_ts=-HOUR)
    with db.read() as s:
        assert rollout.expire_due(s, s.get(Deployment, dep))
    with db.write() as s:
        rollout.expire(s, dep)
    assert [row(db, dep, d).status for d in devs] == ["failure", "skipped", "skipped"]
    with db.read() as s:
        assert s.get(Deployment, dep).status == "finished"
        assert not rollout.expire_due(s, s.get(Deployment, dep))


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ({"end_ts": -HOUR}, "end_ts is in the past"),
        ({"start_ts": 2 * HOUR, "end_ts": HOUR}, "end_ts is not after start_ts"),
        ({"window": "02:00-02:00"}, "never opens"),
        ({"window": "2:00-04:00"}, "HH:MM-HH:MM"),
        ({"window": "24:00-04:00"}, "HH:MM-HH:MM"),
    ],
)
def test_bad_times_are_refused_in_one_line(db, times, message):
    add_artifact(db, "r1")
    dev = add_device(db, "a")
    kw = {k: utcnow() + v for k, v in times.items() if k != "window"}
    with pytest.raises(BadRequest, match=message):
        deploy(db, "r1", [dev], install_window=times.get("window"), **kw)


def test_start_ts_goes_on_the_first_phase_when_there_are_phases(db):
    add_artifact(db, "r1")
    dev = add_device(db, "a")
    with pytest.raises(BadRequest, match="first phase"):
        deploy(db, "r1", [dev], start_ts=utcnow() + HOUR, phase_specs=[PhaseSpec()])
    with pytest.raises(BadRequest, match="last phase"):
        deploy(
            db,
            "r1",
            [dev],
            end_ts=utcnow() + HOUR,
            phase_specs=[PhaseSpec(start_ts=utcnow() + 2 * HOUR)],
        )


@pytest.fixture
def fleet(client, admin, tmp_path):
    upload(client, admin, write_test_artifact(tmp_path / "r.mender", "release-1"))
    devices = [make_device(client, f"w{i}") for i in range(2)]
    return devices, [accept(client, admin, d) for d in devices]


def test_the_install_window_goes_to_the_device_as_documented(client, admin, fleet):
    devices, ids = fleet
    r = client.post(
        MGMT,
        json={
            "name": "night",
            "artifact_name": "release-1",
            "devices": ids[:1],
            "install_window": "22:30-04:00",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    dep = r.headers["Location"].rsplit("/", 1)[1]
    answer = client.get(NEXT, params=PARAMS, headers=devices[0].headers).json()
    assert answer["install_window"] == {"start": "22:30", "end": "04:00"}
    assert client.get(f"{MGMT}/{dep}", headers=admin).json()["install_window"] == "22:30-04:00"
    # the device downloads, then waits for the window: shown in the per-device list
    status = f"/api/devices/v1/deployments/device/deployments/{dep}/status"
    for s in ("downloading", "pause_before_installing", "pause_before_installing"):
        assert client.put(status, json={"status": s}, headers=devices[0].headers).status_code == 204
    listed = client.get(f"{MGMT}/{dep}/devices", headers=admin).json()
    assert [d["status"] for d in listed] == ["pause_before_installing"]
    stats = client.get(f"{MGMT}/{dep}/statistics", headers=admin).json()
    assert stats["pause_before_installing"] == 1


def test_without_a_window_the_answer_has_no_such_member(client, admin, fleet):
    devices, ids = fleet
    r = client.post(
        MGMT, json={"name": "now", "artifact_name": "release-1", "devices": ids[1:]}, headers=admin
    )
    assert r.status_code == 201
    answer = client.get(NEXT, params=PARAMS, headers=devices[1].headers).json()
    assert set(answer) == {"id", "artifact"}


def test_schedule_over_http(client, admin, fleet):
    devices, ids = fleet
    soon = (dt.datetime.now(dt.UTC) + HOUR).isoformat()
    r = client.post(
        MGMT,
        json={"name": "later", "artifact_name": "release-1", "devices": ids, "start_ts": soon},
        headers=admin,
    )
    dep = r.headers["Location"].rsplit("/", 1)[1]
    info = client.get(f"{MGMT}/{dep}", headers=admin).json()
    assert info["status"] == "scheduled" and info["start_ts"] is not None
    assert client.get(NEXT, params=PARAMS, headers=devices[0].headers).status_code == 204
    past = (dt.datetime.now(dt.UTC) - HOUR).isoformat()
    r = client.post(
        MGMT,
        json={"name": "x", "artifact_name": "release-1", "devices": ids, "end_ts": past},
        headers=admin,
    )
    assert r.status_code == 400
    assert r.json()["error"] == "end_ts is in the past: nothing would be handed out"
    r = client.post(
        MGMT,
        json={"name": "x", "artifact_name": "release-1", "devices": ids, "install_window": "1-2"},
        headers=admin,
    )
    assert r.status_code == 400 and "HH:MM-HH:MM" in r.json()["error"]
