"""Dynamic groups with two real `pyupdate-server serve` processes on one PostgreSQL
database: a device's membership changing through one process while it polls through
the other ends as if the two had happened one after the other (docs/deployments.md §9)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from test_postgresql import _fleet, _poll, _race, _sql, server_pair

from pyupdate_testing.server import Server

ENGINES = ("postgresql",)
ATTRS = "/api/devices/v1/inventory/device/attributes"


@pytest.fixture(scope="module")
def pair(pg_cluster, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    root = tmp_path_factory.mktemp("dynamic-pair")
    with server_pair(pg_cluster, root, "dynamic_pair") as servers:
        yield servers


def _channel(server: Server, device, value: str):  # type: ignore[no-untyped-def]
    def call() -> httpx.Response:
        return httpx.put(
            f"{server.url}{ATTRS}",
            json=[{"name": "channel", "value": value}],
            headers=device.headers,
            timeout=60,
        )

    return call


def test_membership_changes_racing_hand_outs_end_consistently(pair):
    a, b = pair
    fleet = _fleet(pair, 16)
    leavers, joiners = fleet[:8], fleet[8:]
    for dev, _ in leavers:
        assert _channel(a, dev, "beta")().status_code == 200
    terms = [{"scope": "inventory", "attribute": "channel", "type": "$eq", "value": "beta"}]
    r = a.api.post("/api/management/v2/inventory/filters", json={"name": "beta", "terms": terms})
    filter_id = r.headers["Location"].rsplit("/", 1)[1]
    r = b.api.post(
        "/api/management/v2/deployments/deployments",
        json={"name": "to beta", "artifact_name": "release-1", "filter_id": filter_id},
    )
    assert r.status_code == 201, r.text
    dep = r.headers["Location"].rsplit("/", 1)[1]
    # each device's membership changes through one process while it polls through the other
    calls = []
    for dev, _ in leavers:
        calls += [_poll(a, dev), _channel(b, dev, "stable")]
    for dev, _ in joiners:
        calls += [_poll(b, dev), _channel(a, dev, "beta")]
    answers = _race(calls)  # type: ignore[arg-type]
    polls = {d: answers[2 * i] for i, (_, d) in enumerate(fleet)}
    assert {r.status_code for r in answers[1::2]} == {200}  # type: ignore[attr-defined]
    assert {r.status_code for r in polls.values()} <= {200, 204}  # type: ignore[attr-defined]
    rows = {
        device: (created, attempts)
        for device, created, attempts in _sql(
            a,
            "SELECT device_id, created, attempts FROM device_deployments WHERE deployment_id = %s",
            dep,
        )
    }
    updated = dict(_sql(a, "SELECT id, updated FROM devices"))
    for dev, device in fleet:
        handed = polls[device].status_code == 200  # type: ignore[attr-defined]
        assert handed == (device in rows), device  # a row exactly for who was handed it
        if not handed:
            continue
        assert rows[device][1] == 1
        created: dt.datetime = rows[device][0]
        # the hand-out and the change took the device's row one after the other: a leaver
        # was handed it before it left, a joiner after it joined
        if (dev, device) in leavers:
            assert created < updated[device], device
        else:
            assert created > updated[device], device
    # after the race: whoever holds it keeps it; leavers without it never get it, every
    # joiner does
    for i, (dev, device) in enumerate(fleet):
        server = (a, b)[i % 2]
        again = _poll(server, dev)().status_code
        expected = 200 if device in rows or (dev, device) in joiners else 204
        assert again == expected, device
    info = a.deployment(dep)
    assert info["device_count"] == len(rows) + sum(1 for _, d in joiners if d not in rows)
