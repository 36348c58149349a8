"""Phased rollouts with two real `pyupdate-server serve` processes on one PostgreSQL
database: each automatic decision is taken once, whichever process sees it first, and a
pause and the hand-outs racing it end consistently (docs/deployments.md, "Phases")."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from test_postgresql import _fleet, _poll, _race, _report, _sql, server_pair

from pyupdate_testing.server import Server

ENGINES = ("postgresql",)
MGMT = "/api/management/v1/deployments"


@pytest.fixture(scope="module")
def pair(pg_cluster, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    root = tmp_path_factory.mktemp("phases-pair")
    with server_pair(pg_cluster, root, "phases_pair") as servers:
        yield servers


def _events(server: Server, dep: str, kind: str) -> list[dict]:
    return [e for e in server.deployment(dep)["events"] if e["kind"] == kind]


def test_two_processes_pause_once_and_hand_out_nothing_after(pair):
    a, b = pair
    fleet = _fleet(pair, 16)
    dep = a.deploy(
        "release-1",
        [d for _, d in fleet],
        name="pause-race",
        phases=[{"batch_count": 12}, {"start_when_healthy": True}],
        failure_threshold={"count": 3},
    )
    servers = itertools.cycle((a, b))
    started, fresh, later = fleet[:6], fleet[6:12], fleet[12:]
    for dev, _ in started:
        assert _poll(next(servers), dev)().status_code == 200
        for status in ("downloading", "installing", "rebooting"):
            assert _report(next(servers), dev, dep, status)().status_code == 204
    # six failures (the threshold is three) race the first polls of the rest of the fleet
    calls = [_report(next(servers), dev, dep, "failure") for dev, _ in started]
    calls += [_poll(next(servers), dev) for dev, _ in fresh + later]
    answers = _race(calls)  # type: ignore[arg-type]
    assert {r.status_code for r in answers[:6]} == {204}  # type: ignore[attr-defined]
    polls = answers[6:]
    assert {r.status_code for r in polls} <= {200, 204}  # type: ignore[attr-defined]
    assert all(r.status_code == 204 for r in polls[6:])  # type: ignore[attr-defined]  # phase 2
    paused = _events(a, dep, "paused")
    assert [e["message"] for e in paused] == [
        "phase 1: 3 failures of 12 (25%) >= threshold 3: paused"
    ]
    # whoever polled before the pause was handed it (once); nobody after it
    handed = {i for i, r in enumerate(polls[:6]) if r.status_code == 200}  # type: ignore[attr-defined]
    attempts = dict(
        _sql(a, "SELECT device_id, attempts FROM device_deployments WHERE deployment_id = %s", dep)
    )
    assert {i for i, (_, d) in enumerate(fresh) if attempts[d] == 1} == handed
    assert all(attempts[d] == 0 for _, d in later)
    for i, ((dev, _), server) in enumerate(zip(fresh + later, servers, strict=False)):
        assert _poll(server, dev)().status_code == (200 if i in handed else 204)
    info = b.deployment(dep)
    assert info["status"] == "paused"
    assert info["statistics"]["failure"] == 6


def test_two_processes_start_a_phase_once(pair):
    a, b = pair
    fleet = _fleet(pair, 12)
    dep = a.deploy(
        "release-1",
        [d for _, d in fleet],
        name="start-race",
        phases=[{"batch_count": 2}, {"start_ts": "2040-01-01T00:00:00Z"}],
    )
    answers = _race([_poll(s, dev) for (dev, _), s in zip(fleet[2:], itertools.cycle((a, b)))])
    assert {r.status_code for r in answers} == {204}  # type: ignore[attr-defined]
    assert b.deployment(dep)["phases"][1]["device_count"] == 0
    # the start time passes; the next polls and management reads through both processes
    # all see the phase due, and one of them starts it
    _sql(
        a,
        "UPDATE deployment_phases SET start_ts = now() AT TIME ZONE 'utc' - interval '1 second'"
        " WHERE deployment_id = %s AND number = 2 RETURNING id",
        dep,
    )
    calls = [_poll(s, dev) for (dev, _), s in zip(fleet[2:], itertools.cycle((a, b)))]
    calls += [lambda s=s: s.api.get(f"{MGMT}/deployments/{dep}") for s in (a, b, a, b)]  # type: ignore[misc]
    answers = _race(calls)  # type: ignore[arg-type]
    assert {r.status_code for r in answers} == {200}  # type: ignore[attr-defined]
    assert [e["phase"] for e in _events(b, dep, "phase_started")] == [1, 2]
    assert b.deployment(dep)["phases"][1]["device_count"] == 10
