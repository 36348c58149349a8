"""Several real `pyupdate-server serve` processes on one PostgreSQL database, and faults.

The concurrency rules of docs/deployments.md must hold across processes: a device is
never handed two deployments, no status report is lost, `max_devices` is never exceeded,
and an abort racing hand-outs ends consistently. The database going away mid-test gives
devices 503 with Retry-After, and service resumes by itself when it is back.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from server_helpers import FakeDevice, accept, make_device

from pyupdate_server.app import create_app
from pyupdate_server.cli import main
from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.device_keys import pubkey_pem, sign
from pyupdate_testing.server import Server, live_server

ENGINES = ("postgresql",)
DEV = "/api/devices/v1/deployments/device/deployments"
MGMT = "/api/management/v1/deployments"
PROVIDES = {"artifact_name": "base", "device_type": "qemux86-64"}
DEVICES = 12
_names = itertools.count()


@contextlib.contextmanager
def server_pair(cluster, root: Path, name: str) -> Iterator[tuple[Server, Server]]:  # type: ignore[no-untyped-def]
    """Two server processes sharing one PostgreSQL database (and one data dir, as two
    processes on one host do: the secret key and the artifact files), release-1 uploaded."""
    url = cluster.create_database(name)
    data = root / "data"
    with (
        live_server(root / "a", data_dir=data, database_url=url) as a,
        live_server(root / "b", data_dir=data, database_url=url, create_admin=False) as b,
    ):
        a.upload(write_test_artifact(root / "r.mender", "release-1"))
        yield a, b


@pytest.fixture(scope="module")
def pair(pg_cluster, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    with server_pair(pg_cluster, tmp_path_factory.mktemp("pair"), "pair") as servers:
        yield servers


def _sql(server: Server, query: str, *params: object) -> list[tuple]:
    """What the API does not show (e.g. hand-out counts), straight from the database."""
    import psycopg

    assert server.database_url is not None
    with psycopg.connect(server.database_url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def _fleet(pair: tuple[Server, Server], n: int = DEVICES) -> list[tuple[FakeDevice, str]]:
    """`n` accepted devices with tokens, each with a client per server: (device, id)."""
    a, _ = pair
    tag = next(_names)
    fleet = []
    with httpx.Client(base_url=a.url, timeout=60) as client:
        for i in range(n):
            device = make_device(client, f"pg-{tag}-{i}")  # type: ignore[arg-type]
            device_id = a.preauthorize(device.identity, pubkey_pem(device.key))
            assert device.authenticate().status_code == 200
            fleet.append((device, device_id))
    return fleet


def _race(calls: list[Callable[[], object]]) -> list[object]:
    """Run every call at once (as far as threads go) and return their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> object:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _poll(server: Server, device: FakeDevice) -> Callable[[], httpx.Response]:
    def call() -> httpx.Response:
        return httpx.get(
            f"{server.url}{DEV}/next", params=PROVIDES, headers=device.headers, timeout=60
        )

    return call


def _report(server: Server, device: FakeDevice, dep: str, status: str):  # type: ignore[no-untyped-def]
    def call() -> httpx.Response:
        return httpx.put(
            f"{server.url}{DEV}/{dep}/status",
            json={"status": status},
            headers=device.headers,
            timeout=60,
        )

    return call


def test_two_processes_never_hand_a_device_two_deployments(pair):
    a, b = pair
    fleet = _fleet(pair)
    ids = [d for _, d in fleet]
    first = a.deploy("release-1", ids, name="first")
    second = b.deploy("release-1", ids, name="second")
    # every device polls four times at once, two polls through each process
    calls = [_poll(s, dev) for dev, _ in fleet for s in (a, b, a, b)]
    answers = _race(calls)
    assert all(r.status_code == 200 for r in answers), {r.status_code for r in answers}
    assert {r.json()["id"] for r in answers} == {first}  # the oldest, and only it
    assert set(a.device_statuses(second).values()) == {"pending"}  # handed to nobody
    assert a.deployment(first)["statistics"]["pending"] == len(fleet)
    # handed out once per device, not once per poll: a double hand-out would also
    # spend one of the deployment's retries
    attempts = _sql(a, "SELECT attempts FROM device_deployments WHERE deployment_id = %s", first)
    assert sorted(n for (n,) in attempts) == [1] * len(fleet)


def test_first_auth_requests_of_one_device_through_two_processes_make_one_device(pair):
    a, b = pair
    device = make_device(httpx.Client(timeout=60), f"pg-new-{next(_names)}")  # type: ignore[arg-type]
    body = device.auth_body()
    headers = {"Content-Type": "application/json", "X-MEN-Signature": sign(device.key, body)}

    def request(server: Server) -> Callable[[], httpx.Response]:
        url = f"{server.url}/api/devices/v1/authentication/auth_requests"
        return lambda: httpx.post(url, content=body, headers=headers, timeout=60)

    answers = _race([request(s) for s in (a, b) * 4])
    assert {r.status_code for r in answers} == {401}  # pending, never a 409 or 500
    found = [d for d in a.pending_devices() if d["identity_data"] == device.identity]
    assert len(found) == 1 and len(found[0]["auth_sets"]) == 1


def test_two_processes_lose_no_status_report_and_finish_the_deployment(pair):
    a, b = pair
    fleet = _fleet(pair)
    dep = a.deploy("release-1", [d for _, d in fleet], name="reports")
    _race([_poll(s, dev) for (dev, _), s in zip(fleet, itertools.cycle((a, b)))])
    for status in ("downloading", "installing", "rebooting", "success"):
        calls = [
            _report(s, dev, dep, status) for (dev, _), s in zip(fleet, itertools.cycle((a, b)))
        ]
        assert {r.status_code for r in _race(calls)} == {204}
    assert set(b.device_statuses(dep).values()) == {"success"}
    info = b.deployment(dep)
    assert info["status"] == "finished"  # the last of the concurrent reports closed it
    assert info["statistics"]["success"] == len(fleet)


def test_two_processes_never_exceed_max_devices(pair):
    a, b = pair
    fleet = _fleet(pair)
    dep = a.deploy("release-1", [d for _, d in fleet], name="capped", max_devices=3)
    answers = _race([_poll(s, dev) for (dev, _), s in zip(fleet, itertools.cycle((a, b)))])
    assert sorted(r.status_code for r in answers) == [200] * 3 + [204] * (len(fleet) - 3)
    stats = a.deployment(dep)["statistics"]
    assert (stats["pending"], stats["skipped"]) == (3, len(fleet) - 3)


def test_abort_racing_hand_outs_and_reports_ends_consistently(pair):
    a, b = pair
    fleet = _fleet(pair)
    dep = a.deploy("release-1", [d for _, d in fleet], name="aborted")
    half = len(fleet) // 2
    # half the fleet has started already; the abort races the other half's first polls
    # and the first half's status reports, through both processes
    _race([_poll(a, dev) for dev, _ in fleet[:half]])
    calls: list[Callable[[], object]] = [_poll(b, dev) for dev, _ in fleet[half:]]
    calls += [_report(a, dev, dep, "downloading") for dev, _ in fleet[:half]]
    calls.append(lambda: b.api.put(f"{MGMT}/deployments/{dep}/status", json={"status": "aborted"}))
    answers = _race(calls)
    assert answers[-1].status_code == 204  # type: ignore[attr-defined]
    polls, reports = answers[: len(fleet) - half], answers[len(fleet) - half : -1]
    assert {r.status_code for r in polls} <= {200, 204}  # type: ignore[attr-defined]
    assert {r.status_code for r in reports} <= {204, 409}  # type: ignore[attr-defined]
    # whatever won each race, the end is one state: every device aborted, the deployment
    # finished, and nothing handed out after the abort
    assert set(a.device_statuses(dep).values()) == {"aborted"}
    assert a.deployment(dep)["status"] == "finished"
    for dev, _ in fleet:
        assert _poll(b, dev)().status_code == 204


# -- faults ---------------------------------------------------------------------------


def test_values_postgresql_cannot_hold_are_400_not_500(client, admin):
    r = client.post(
        "/api/management/v1/useradm/settings/tokens", json={"name": "ci\x00"}, headers=admin
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("value not accepted: ") and "NUL" in r.text


def test_unreachable_database_at_start_is_one_line_and_exit_3(tmp_path, capsys):
    from pyupdate_testing.server import free_port

    url = f"postgresql://pyupdate:pw@127.0.0.1:{free_port()}/nowhere"
    assert main(["user", "create", "--data-dir", str(tmp_path), "--database-url", url,
                 "--username", "a@example.com", "--password", "password1"]) == 3  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: database postgresql://pyupdate:***@127.0.0.1"), err
    assert "pw@" not in err and "refused" in err.lower()


def test_serve_with_an_unreachable_database_exits_with_one_line(tmp_path):
    import subprocess

    from pyupdate_testing.server import free_port, server_command

    url = f"postgresql://pyupdate@127.0.0.1:{free_port()}/nowhere"
    run = subprocess.run(
        [*server_command(), "serve", "--data-dir", str(tmp_path), "--database-url", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert run.stderr.startswith("error: database ") and run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr


def test_database_lost_while_serving_is_503_then_service_resumes(
    pg_cluster, pg_database, tmp_path: Path
):
    from pyupdate_server.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", secret_key="k" * 40, database_url=pg_database)
    with TestClient(create_app(settings)) as client:
        from server_helpers import ADMIN

        from pyupdate_server.services.users import create_user

        with client.app.state.server.db.write() as session:  # type: ignore[attr-defined]
            create_user(session, *ADMIN)
        token = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN).text
        admin = {"Authorization": f"Bearer {token}"}
        device = make_device(client, "fault")
        accept(client, admin, device)
        assert client.get(f"{DEV}/next", params=PROVIDES, headers=device.headers).status_code == 204

        pg_cluster.stop()
        try:
            for answer in (
                client.get(f"{DEV}/next", params=PROVIDES, headers=device.headers),
                client.put(
                    f"{DEV}/x/status", json={"status": "installing"}, headers=device.headers
                ),
                client.patch(
                    "/api/devices/v1/inventory/device/attributes",
                    json=[{"name": "a", "value": "b"}],
                    headers=device.headers,
                ),
                client.get("/health/ready"),
                client.get("/api/management/v2/devauth/devices", headers=admin),
            ):
                assert answer.status_code == 503, answer.text
                assert int(answer.headers["Retry-After"]) > 0
                assert answer.json()["error"].startswith("database unavailable: ")
            assert client.get("/health").status_code == 200  # alive, only not ready
        finally:
            pg_cluster.start()

        # no restart of the server: the pool notices the new database by itself
        assert client.get("/health/ready").status_code == 200
        assert client.get(f"{DEV}/next", params=PROVIDES, headers=device.headers).status_code == 204
        r = client.patch(
            "/api/devices/v1/inventory/device/attributes",
            json=[{"name": "a", "value": "b"}],
            headers=device.headers,
        )
        assert r.status_code == 200, r.text
