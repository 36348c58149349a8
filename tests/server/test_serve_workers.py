"""`pyupdate-server serve --workers N`: a parent and N worker processes on one socket.

Runs the real command on SQLite and on PostgreSQL (conftest.py): devices and the
management API served at once, every worker answering, a worker killed with SIGKILL
replaced by the parent, and the parent stopping cleanly (with its workers) on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from server_helpers import FakeDevice, make_device

from pyupdate_server.cli import main
from pyupdate_testing.device_keys import pubkey_pem
from pyupdate_testing.server import Server, live_server

NEXT = "/api/devices/v1/deployments/device/deployments/next"
PROVIDES = {"artifact_name": "base", "device_type": "qemux86-64"}
DEVICES = 16


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[Server]:
    with live_server(tmp_path, database_url=database_url, workers=2) as server:
        yield server


def _devices(server: Server, n: int) -> list[FakeDevice]:
    """`n` accepted devices with tokens (preauthorized, then authenticated)."""
    fleet = []
    client = httpx.Client(base_url=server.url, timeout=60)
    for i in range(n):
        device = make_device(client, f"workers-{i}")  # type: ignore[arg-type]
        server.preauthorize(device.identity, pubkey_pem(device.key))
        assert device.authenticate().status_code == 200
        fleet.append(device)
    return fleet


def _poll(server: Server, device: FakeDevice) -> int:
    # a new connection each time: the kernel hands it to whichever worker accepts
    r = httpx.get(f"{server.url}{NEXT}", params=PROVIDES, headers=device.headers, timeout=10)
    return r.status_code


def _answers_with_only(server: Server, worker: int, device: FakeDevice, token: str) -> None:
    """Stop every other worker for a moment: what still answers is `worker`."""
    others = [p for p in server.worker_pids() if p != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        # new connections (a kept-alive one may belong to a stopped worker), and well
        # inside the parent's 5 s health check, which would replace a stopped worker
        assert _poll(server, device) == 204
        r = httpx.get(
            f"{server.url}/api/management/v2/devauth/devices",
            headers={"Authorization": f"Bearer {token}"},
            timeout=3,
        )
        assert r.status_code == 200
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def test_two_workers_serve_devices_and_management_at_once(server: Server):
    fleet = _devices(server, DEVICES)
    token = server.token

    def manage(_: int) -> int:
        r = httpx.get(
            f"{server.url}/api/management/v2/devauth/devices",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        polls = pool.map(lambda d: _poll(server, d), fleet * 4)
        lists = pool.map(manage, range(16))
        assert set(polls) == {204} and set(lists) == {200}
    workers = server.worker_pids()
    assert len(workers) == 2
    for pid in workers:
        _answers_with_only(server, pid, fleet[0], token)
    # the counters of both workers, whichever answers /metrics
    metrics = server.api.get("/metrics").text
    served = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("pyupdate_http_requests_total{") and 'status="204"' in line
    ]
    assert sum(served) >= DEVICES * 4 + 2


def test_a_killed_worker_is_replaced_and_sigterm_stops_them_all(server: Server):
    device = _devices(server, 1)[0]
    first, second = server.worker_pids()
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        # the other worker serves meanwhile
        assert _poll(server, device) == 204
        pids = server.worker_pids()
        if len(pids) == 2 and first not in pids:
            break
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.2)
    server.wait_workers()
    (new,) = set(pids) - {second}
    _answers_with_only(server, new, device, server.token)

    tmp = server.data_dir / "tmp"
    assert [p for p in tmp.iterdir() if p.is_dir()]  # the running server's temp dir
    os.kill(server.process.pid, signal.SIGTERM)  # the parent only, as a supervisor does
    assert server.process.wait(timeout=30) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid
    assert not [p for p in tmp.iterdir() if p.is_dir()]  # removed at a clean stop


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize(
    ("how", "value", "message"),
    [
        ("flag", "0", "workers must be 1 to 64, not 0"),
        ("flag", "-1", "workers must be 1 to 64, not -1"),
        ("flag", "65", "workers must be 1 to 64, not 65"),
        ("flag", "two", "setting workers: invalid literal for int() with base 10: 'two'"),
        ("env", "2.5", "setting workers: invalid literal for int() with base 10: '2.5'"),
        ("file", "2.5", "setting workers: 2.5 is not an integer"),
        ("file", "true", "setting workers: True is not an integer"),
    ],
)
def test_bad_workers_value_is_one_line_and_exit_2(
    tmp_path, capsys, monkeypatch, how, value, message
):
    argv = ["serve", "--data-dir", str(tmp_path / "d")]
    if how == "flag":
        argv += ["--workers", value]
    elif how == "env":
        monkeypatch.setenv("PYUPDATE_SERVER_WORKERS", value)
    else:
        (tmp_path / "s.toml").write_text(f"workers = {value}\n")
        argv += ["--config", str(tmp_path / "s.toml")]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "d").exists()  # refused before anything was made
