"""Phased rollouts over HTTP: the management API's shape, and a simulated fleet of a few
hundred devices with their own keys, speaking the device API as the Mender 3.4 client
does, through three-phase rollouts (docs/deployments.md, "Phases")."""

from __future__ import annotations

import pytest
from server_helpers import FakeDevice, accept, fetch, make_device, upload

from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.device_keys import device_key, pubkey_pem

DEV = "/api/devices/v1/deployments/device/deployments"
MGMT = "/api/management/v1/deployments"
PROVIDES = {"artifact_name": "base", "device_type": "qemux86-64"}
FLEET = 300


def _fleet(client, admin, n: int) -> list[tuple[FakeDevice, str]]:
    """`n` preauthorized devices, each with its own key, authenticated: (device, id)."""
    out = []
    for i in range(n):
        device = FakeDevice(client, {"mac": f"fleet-{i}"}, device_key("ec", i))
        r = client.post(
            "/api/management/v2/devauth/devices",
            json={"identity_data": device.identity, "pubkey": pubkey_pem(device.key)},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        assert device.authenticate().status_code == 200
        out.append((device, r.headers["location"].rsplit("/", 1)[1]))
    return out


def _release(client, admin, tmp_path, name: str = "release-2") -> None:
    path = write_test_artifact(tmp_path / f"{name}.mender", name)
    assert upload(client, admin, path).status_code == 201


def _create(client, admin, **body):
    return client.post(f"{MGMT}/deployments", json={"name": "r", **body}, headers=admin)


def _poll(device: FakeDevice) -> str | None:
    r = device.client.post(f"{DEV}/next", json=PROVIDES, headers=device.headers)
    assert r.status_code in (200, 204), r.text
    return r.json()["id"] if r.status_code == 200 else None


def _install(device: FakeDevice, dep: str, result: str = "success", uri: str | None = None) -> None:
    """Download (when given the link), install, reboot, then the final report: success
    comes only after the reboot and the commit, as our agent and Mender 3.4 send it."""
    for status in ("downloading", "installing", "rebooting", result):
        if status == "installing" and uri is not None:
            assert fetch(device.client, uri).status_code == 200
        r = device.client.put(
            f"{DEV}/{dep}/status", json={"status": status}, headers=device.headers
        )
        assert r.status_code == 204, r.text


def _show(client, admin, dep: str) -> dict:
    r = client.get(f"{MGMT}/deployments/{dep}", headers=admin)
    assert r.status_code == 200, r.text
    return r.json()


def _set(client, admin, dep: str, status: str) -> int:
    r = client.put(f"{MGMT}/deployments/{dep}/status", json={"status": status}, headers=admin)
    return r.status_code


def _handed(fleet, dep: str) -> list[int]:
    """Poll with every device; the indexes of those handed `dep`."""
    return [i for i, (device, _) in enumerate(fleet) if _poll(device) == dep]


# -- the API ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"update_control_map": {"Priority": 1}},
        {"autogenerate_delta": True},
        {"phases": [{"batch_size": 50, "max_devices": 2}, {"start_ts": "2030-01-01T00:00:00Z"}]},
        {"failure_threshold": {"percent": 10, "per": "phase"}},
    ],
)
def test_fields_we_do_not_implement_are_refused_in_one_line(client, admin, tmp_path, extra):
    device = make_device(client, "one")
    device_id = accept(client, admin, device)
    _release(client, admin, tmp_path)
    r = _create(client, admin, artifact_name="release-2", devices=[device_id], **extra)
    assert r.status_code == 422, r.text
    assert "Extra inputs are not permitted" in r.json()["error"]
    assert "\n" not in r.json()["error"]
    assert client.get(f"{MGMT}/deployments", headers=admin).json() == []
    r = client.put(f"{MGMT}/deployments/x/status", json={"status": "paused", "x": 1}, headers=admin)
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "phases": [
                    {"batch_size": 60},
                    {"batch_size": 60, "start_ts": "2030-01-01T00:00:00Z"},
                ]
            },
            "120%",
        ),
        ({"phases": [{"batch_size": 50}, {"batch_size": 50}]}, "phase 2: give start_ts"),
        ({"phases": [{"batch_size": 50, "start_ts": "2030-01-01T00:00:00"}, {}]}, "timezone"),
        ({"failure_threshold": {"percent": 150}}, "less than or equal to 100"),
        ({"failure_threshold": {"count": 2, "percent": 5}}, "not both"),
        ({"failure_action": "abort"}, "give a failure_threshold"),
    ],
)
def test_bad_rollouts_are_one_line_4xx(client, admin, tmp_path, body, message):
    devices = [accept(client, admin, make_device(client, f"b{i}")) for i in range(4)]
    _release(client, admin, tmp_path)
    r = _create(client, admin, artifact_name="release-2", devices=devices, **body)
    assert 400 <= r.status_code < 500, r.text
    assert message in r.json()["error"] and "\n" not in r.json()["error"]


def test_mender_enterprise_phases_request_and_response(client, admin, tmp_path):
    fleet = _fleet(client, admin, 20)
    _release(client, admin, tmp_path)
    r = _create(
        client,
        admin,
        artifact_name="release-2",
        devices=[d for _, d in fleet],
        phases=[
            {"batch_size": 25},
            {"batch_size": 25, "start_ts": "2040-07-07T21:16:17.063+0000"},
            {"start_ts": "2040-09-07T21:16:17.063+0000"},
        ],
    )
    assert r.status_code == 201, r.text
    dep = r.headers["location"].rsplit("/", 1)[1]
    assert _handed(fleet, dep) == list(range(5))  # 25% of 20, not all 20
    info = _show(client, admin, dep)
    assert info["status"] == "inprogress" and info["paused"] is False
    assert [
        (p["number"], p["batch_size"], p["start_ts"], p["devices"], p["device_count"], p["status"])
        for p in info["phases"]
    ] == [
        (1, 25, None, 5, 5, "inprogress"),
        (2, 25, "2040-07-07T21:16:17.063000Z", 5, 0, "waiting"),
        (3, None, "2040-09-07T21:16:17.063000Z", 10, 0, "waiting"),
    ]
    assert [e["message"] for e in info["events"]] == ["phase 1: started (at once): 5 devices"]
    listed = client.get(f"{MGMT}/deployments", headers=admin).json()
    assert listed[0]["phases"] == info["phases"] and "events" not in listed[0]


def test_first_phase_later_is_scheduled(client, admin, tmp_path):
    fleet = _fleet(client, admin, 4)
    _release(client, admin, tmp_path)
    r = _create(
        client,
        admin,
        artifact_name="release-2",
        devices=[d for _, d in fleet],
        phases=[{"start_ts": "2040-01-01T00:00:00Z"}],
    )
    dep = r.headers["location"].rsplit("/", 1)[1]
    assert _show(client, admin, dep)["status"] == "scheduled"
    assert _handed(fleet, dep) == []


# -- the fleet --------------------------------------------------------------------------

THREE_PHASES = {
    "phases": [
        {"batch_size": 10},
        {"batch_size": 30, "start_when_healthy": True},
        {"start_when_healthy": True},
    ],
    "failure_threshold": {"percent": 20},
    "success_threshold": {"percent": 75},
}


def _phase_two_fails(client, admin, tmp_path):
    """A three-phase rollout of FLEET devices (30, 90, 180); phase 1 succeeds, then 18 of
    the first 40 of phase 2 fail: 20% of 90, the threshold. Returns (fleet, dep)."""
    fleet = _fleet(client, admin, FLEET)
    _release(client, admin, tmp_path)
    r = _create(
        client, admin, artifact_name="release-2", devices=[d for _, d in fleet], **THREE_PHASES
    )
    assert r.status_code == 201, r.text
    dep = r.headers["location"].rsplit("/", 1)[1]
    assert _handed(fleet, dep) == list(range(30))
    for i in range(30):
        _install(fleet[i][0], dep)
    info = _show(client, admin, dep)
    assert [p["status"] for p in info["phases"]] == ["finished", "inprogress", "waiting"]
    # the first 40 of phase 2 poll and are handed it; the others have not polled yet
    assert [i for i in range(30, 70) if _poll(fleet[i][0]) == dep] == list(range(30, 70))
    for i in range(30, 48):
        _install(fleet[i][0], dep, "failure")
    return fleet, dep


def test_fleet_rollout_pauses_itself_when_phase_two_fails_then_resumes(client, admin, tmp_path):
    fleet, dep = _phase_two_fails(client, admin, tmp_path)
    info = _show(client, admin, dep)
    assert info["status"] == "paused" and info["paused"] is True
    paused = [e for e in info["events"] if e["kind"] == "paused"]
    assert [e["message"] for e in paused] == [
        "phase 2: 18 failures of 90 (20%) >= threshold 20%: paused"
    ]
    assert paused[0]["by"] == "" and paused[0]["data"]["failures"] == 18
    # paused: nobody new is handed it, neither the rest of phase 2 nor phase 3
    assert _handed(fleet, dep) == list(range(48, 70))  # those in flight, the same again
    # ...which finish
    for i in range(48, 70):
        _install(fleet[i][0], dep)
    assert _handed(fleet, dep) == []
    phase3 = _show(client, admin, dep)["phases"][2]
    assert (phase3["status"], phase3["device_count"]) == ("waiting", 0)
    assert _set(client, admin, dep, "paused") == 422  # already

    assert _set(client, admin, dep, "inprogress") == 204
    assert _handed(fleet, dep) == list(range(70, 120))  # the rest of phase 2
    for i in range(70, 120):
        _install(fleet[i][0], dep)
    # 72 successes of 90 (80%) >= 75%: phase 3 starts
    info = _show(client, admin, dep)
    assert [p["status"] for p in info["phases"]] == ["finished", "finished", "inprogress"]
    assert _handed(fleet, dep) == list(range(120, FLEET))
    for i in range(120, FLEET):
        _install(fleet[i][0], dep)
    info = _show(client, admin, dep)
    assert info["status"] == "finished"
    assert (info["statistics"]["success"], info["statistics"]["failure"]) == (FLEET - 18, 18)
    assert [(e["kind"], e["phase"]) for e in info["events"]] == [
        ("phase_started", 1),
        ("healthy", 1),
        ("phase_started", 2),
        ("paused", 2),
        ("resumed", None),
        ("healthy", 2),
        ("phase_started", 3),
        ("healthy", 3),
    ]
    assert info["events"][4]["by"] == "admin@example.com"


def test_fleet_rollout_paused_by_phase_two_is_aborted(client, admin, tmp_path):
    fleet, dep = _phase_two_fails(client, admin, tmp_path)
    assert _set(client, admin, dep, "aborted") == 204
    # devices in flight are told at their next report; nobody is handed it any more
    r = fleet[50][0].client.put(
        f"{DEV}/{dep}/status", json={"status": "installing"}, headers=fleet[50][0].headers
    )
    assert r.status_code == 409
    assert _handed(fleet, dep) == []
    info = _show(client, admin, dep)
    assert info["status"] == "finished" and info["aborted"] is True
    assert info["statistics"]["aborted"] == FLEET - 48
    assert info["phases"][2]["device_count"] == 0
    assert info["events"][-1]["message"] == "aborted by admin@example.com"
    assert _set(client, admin, dep, "inprogress") == 422


def test_fleet_rollout_with_abort_as_the_threshold_action(client, admin, tmp_path):
    fleet = _fleet(client, admin, 40)
    _release(client, admin, tmp_path)
    r = _create(
        client,
        admin,
        artifact_name="release-2",
        devices=[d for _, d in fleet],
        phases=[{"batch_count": 10}, {"start_when_healthy": True}],
        failure_threshold={"count": 3},
        failure_action="abort",
    )
    dep = r.headers["location"].rsplit("/", 1)[1]
    assert _handed(fleet, dep) == list(range(10))
    for i in range(3):
        _install(fleet[i][0], dep, "failure")
    info = _show(client, admin, dep)
    assert info["aborted"] is True
    assert (
        info["events"][-1]["message"] == "phase 1: 3 failures of 10 (30%) >= threshold 3: aborted"
    )
    assert _handed(fleet, dep) == []


def test_healthy_fleet_rollout_advances_phase_by_phase(client, admin, tmp_path):
    fleet = _fleet(client, admin, 100)
    _release(client, admin, tmp_path)
    r = _create(
        client, admin, artifact_name="release-2", devices=[d for _, d in fleet], **THREE_PHASES
    )
    dep = r.headers["location"].rsplit("/", 1)[1]
    expected = [range(0, 10), range(10, 40), range(40, 100)]
    for number, devices in enumerate(expected, 1):
        info = _show(client, admin, dep)
        assert [p["status"] != "waiting" for p in info["phases"]] == [
            n <= number for n in (1, 2, 3)
        ]
        handed = _handed(fleet, dep)
        assert handed == list(devices), number
        for i in handed:
            r = fleet[i][0].client.post(f"{DEV}/next", json=PROVIDES, headers=fleet[i][0].headers)
            _install(fleet[i][0], dep, uri=r.json()["artifact"]["source"]["uri"])
    info = _show(client, admin, dep)
    assert info["status"] == "finished" and info["statistics"]["success"] == 100
    assert [e["message"] for e in info["events"]] == [
        "phase 1: started (at once): 10 devices",
        "phase 1: 8 successes of 10 (80%) >= threshold 75%: healthy",
        "phase 2: started (phase 1 is healthy): 30 devices",
        "phase 2: 23 successes of 30 (77%) >= threshold 75%: healthy",
        "phase 3: started (phase 2 is healthy): 60 devices",
        "phase 3: 45 successes of 60 (75%) >= threshold 75%: healthy",
    ]
