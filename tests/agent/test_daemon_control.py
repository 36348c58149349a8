"""`pyupdate check-update` / `pyupdate send-inventory` poke a running daemon through its
pid file (daemon/control.py, docs/agent.md "Managed mode"); one daemon per data dir.

The daemons poll once an hour, so after their first sync nothing happens by itself:
what the server sees afterwards (its request counters, the inventory) came from
the command.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_testing.daemon_device import (
    CHECK_ROUTE,
    INVENTORY_ROUTE,
    QUIET,
    DaemonDevice,
    make_daemon_device,
)
from pyupdate_testing.host_device import HostDevice
from pyupdate_testing.server import Server, live_server, metric
from pyupdate_testing.wait import wait_for

pytestmark = pytest.mark.uboot


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("control-server")) as srv:
        yield srv


def counts(server: Server) -> tuple[int, int]:
    """(deployment checks, inventory updates) the server has answered, all devices."""
    return (
        metric(server, "pyupdate_http_requests", route=CHECK_ROUTE),
        metric(server, "pyupdate_http_requests", route=INVENTORY_ROUTE),
    )


def plus(base: tuple[int, int], checks: int, inventories: int) -> tuple[int, int]:
    return base[0] + checks, base[1] + inventories


def alive(dev: DaemonDevice) -> bool:
    assert dev.proc is not None
    assert dev.proc.poll() is None, f"daemon exited with {dev.proc.returncode}"
    return True


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def test_check_update_and_send_inventory_make_the_daemon_act_now(
    server: Server, tmp_path: Path
) -> None:
    dev = make_daemon_device(tmp_path / "dev", server, number=31, **QUIET)
    base = counts(server)
    dev.start()
    try:
        wait_for("the first sync", lambda: counts(server) == plus(base, 1, 1), 30, [dev.log])
        time.sleep(1.5)
        assert counts(server) == plus(base, 1, 1)  # quiet on its own

        done = dev.host.run("check-update", timeout=30)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        wait_for("the check", lambda: counts(server) == plus(base, 2, 1), 10, [dev.log])

        # a changed inventory script: the server must get what it says now
        script = dev.root / "inventory" / "hostinfo"
        script.write_text("#!/bin/sh\necho hostname=device-31-renamed\n")
        done = dev.host.run("send-inventory", timeout=30)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        wait_for("the inventory", lambda: counts(server) == plus(base, 2, 2), 10, [dev.log])
        assert dev.device_id is not None
        assert server.inventory(dev.device_id)["hostname"] == "device-31-renamed"
        assert alive(dev)
    finally:
        dev.stop()


def test_a_signal_right_after_start_does_not_kill_the_daemon(
    server: Server, tmp_path: Path
) -> None:
    """`check-update` as soon as the pid file names the daemon: the signals must be
    blocked by then (their default action ends the process). In-process CLI calls:
    a new interpreter per command is too slow to land in that window.
    """
    dev = make_daemon_device(tmp_path / "dev", server, number=32, **QUIET)
    pid_file = dev.host.data / "pyupdate.pid"
    base = counts(server)
    dev.start()
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert dev.host.cli("check-update") == 0
        assert dev.host.cli("send-inventory") == 0
        wait_for("a sync", lambda: alive(dev) and counts(server) >= plus(base, 1, 1), 30,
                 [dev.log])  # fmt: skip
        time.sleep(0.5)
        assert alive(dev)
    finally:
        dev.stop()


@pytest.mark.parametrize("verb", ["check-update", "send-inventory"])
@pytest.mark.parametrize("pid_file", ["missing", "stale"])
def test_without_a_running_daemon_the_verbs_fail_with_one_line(
    host: HostDevice, verb: str, pid_file: str
) -> None:
    path = host.data / "pyupdate.pid"
    if pid_file == "stale":  # the daemon was killed: its pid file names a dead process
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        path.write_text(f"{gone.pid}\n")
    err = one_line_error(host.run(verb, timeout=30))
    assert err == f"error: no running daemon (pid file {path})\n"


def test_a_second_daemon_on_the_same_data_dir_refuses_to_start(
    server: Server, tmp_path: Path
) -> None:
    dev = make_daemon_device(tmp_path / "dev", server, number=33, **QUIET)
    pid_file = dev.host.data / "pyupdate.pid"
    dev.start()
    try:
        assert dev.proc is not None
        first = dev.proc.pid
        wait_for("the pid file", lambda: pid_file.exists(), 30, [dev.log])
        err = one_line_error(dev.host.run("daemon", timeout=60))
        assert err == f"error: a daemon already runs with pid {first} (pid file {pid_file})\n"
        assert pid_file.read_text() == f"{first}\n"
        assert alive(dev)
        # a daemon that died without cleaning up (SIGKILL) does not lock the data dir
        dev.stop()
        assert pid_file.read_text() == f"{first}\n"
        dev.start()
        assert dev.proc is not None
        second = dev.proc.pid
        wait_for("the new pid file", lambda: pid_file.read_text() == f"{second}\n", 30,
                 [dev.log])  # fmt: skip
        assert alive(dev)
    finally:
        dev.stop()
