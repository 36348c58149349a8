"""The daemon authenticates again when its token stops working, and goes on without a
restart (docs/agent.md, "Managed mode"; docs/device-api.md, "Authentication").

Three ways a token stops working on the real server: its auth set is replaced
(deleted and preauthorized again: the token names an auth set that is gone), the
device is rejected and later accepted again, or the token expires. The daemons poll
once an hour; `pyupdate send-inventory` / `check-update` make them call in, and what
the server records (its counters, the inventory) shows what happened.
"""

from __future__ import annotations

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
from pyupdate_testing.server import Server, live_server, metric
from pyupdate_testing.wait import wait_for

pytestmark = pytest.mark.uboot

DEVAUTH = "/api/management/v2/devauth/devices"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("reauth-server")) as srv:
        yield srv


def accepted_auths(server: Server) -> int:
    return metric(server, "pyupdate_device_auth_requests", outcome="accepted")


def hostname(server: Server, dev: DaemonDevice) -> object:
    assert dev.device_id is not None
    return server.inventory(dev.device_id).get("hostname")


def started(server: Server, dev: DaemonDevice) -> None:
    """Start the daemon and wait for its first sync (inventory, then the deployment
    check) to reach the server: after that it is quiet."""
    checks = metric(server, "pyupdate_http_requests", route=CHECK_ROUTE)
    dev.start()
    wait_for("the first sync",
             lambda: metric(server, "pyupdate_http_requests", route=CHECK_ROUTE) == checks + 1,
             30, [dev.log])  # fmt: skip
    assert hostname(server, dev) == f"device-{dev.number}"


def send_inventory_as(dev: DaemonDevice, name: str) -> None:
    """Change what the inventory script says, then poke the daemon."""
    (dev.root / "inventory" / "hostinfo").write_text(f"#!/bin/sh\necho hostname={name}\n")
    done = dev.host.run("send-inventory", timeout=30)
    assert done.returncode == 0, done.stderr


def same_process(dev: DaemonDevice) -> None:
    assert dev.proc is not None and dev.proc.poll() is None
    assert dev.starts == 1


def test_revoked_token_is_replaced_by_a_new_authentication(server: Server, tmp_path: Path) -> None:
    dev = make_daemon_device(tmp_path / "dev", server, number=41, **QUIET)
    assert dev.device_id is not None
    try:
        started(server, dev)
        auths = accepted_auths(server)
        refused = metric(server, "pyupdate_http_requests", route=INVENTORY_ROUTE, status="401")
        # revoke: the token names this auth set; the same key comes back as a new one
        shown = server.api.get(f"{DEVAUTH}/{dev.device_id}").json()
        (auth,) = shown["auth_sets"]
        pubkey = auth["pubkey"]
        r = server.api.delete(f"{DEVAUTH}/{dev.device_id}/auth/{auth['id']}")
        assert r.status_code == 204, r.text
        r = server.api.post(
            DEVAUTH, json={"identity_data": dev.identity, "pubkey": pubkey, "force": True}
        )
        assert r.status_code == 201, r.text
        assert server.api.get(f"{DEVAUTH}/{dev.device_id}").json()["status"] == "preauthorized"

        send_inventory_as(dev, "device-41-after-revoke")
        wait_for("the inventory after the revocation",
                 lambda: hostname(server, dev) == "device-41-after-revoke", 30, [dev.log])  # fmt: skip
        # the old token was refused once, a new auth request was accepted, the call retried
        assert metric(server, "pyupdate_http_requests", route=INVENTORY_ROUTE, status="401") == (
            refused + 1
        )
        assert accepted_auths(server) == auths + 1
        assert server.api.get(f"{DEVAUTH}/{dev.device_id}").json()["status"] == "accepted"
        # and the new token goes on working, without another authentication
        checks = metric(server, "pyupdate_http_requests", route=CHECK_ROUTE, status="204")
        assert dev.host.run("check-update", timeout=30).returncode == 0
        wait_for("the check",
                 lambda: metric(server, "pyupdate_http_requests", route=CHECK_ROUTE, status="204")
                 == checks + 1, 30, [dev.log])  # fmt: skip
        assert accepted_auths(server) == auths + 1
        same_process(dev)
    finally:
        dev.stop()


def test_rejected_then_accepted_device_keeps_working_without_restart(
    server: Server, tmp_path: Path
) -> None:
    dev = make_daemon_device(tmp_path / "dev", server, number=42, **QUIET)
    assert dev.device_id is not None
    try:
        started(server, dev)
        (auth,) = server.api.get(f"{DEVAUTH}/{dev.device_id}").json()["auth_sets"]
        status_url = f"{DEVAUTH}/{dev.device_id}/auth/{auth['id']}/status"
        r = server.api.put(status_url, json={"status": "rejected"})
        assert r.status_code == 204, r.text
        not_accepted = metric(server, "pyupdate_device_auth_requests", outcome="not_accepted")

        send_inventory_as(dev, "device-42-while-rejected")
        wait_for("the refusal", lambda: "does not accept this device" in dev.log.read_text(),
                 30, [dev.log])  # fmt: skip
        assert metric(server, "pyupdate_device_auth_requests", outcome="not_accepted") > (
            not_accepted
        )
        time.sleep(1)
        assert hostname(server, dev) == "device-42"  # nothing got through while rejected

        r = server.api.put(status_url, json={"status": "accepted"})
        assert r.status_code == 204, r.text
        # the daemon retries on its own (RetryPollIntervalSeconds), no new poke needed
        wait_for("the inventory after the acceptance",
                 lambda: hostname(server, dev) == "device-42-while-rejected", 30, [dev.log])  # fmt: skip
        same_process(dev)
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def short_token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose device tokens live 30 s (the setting, read by the server process)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYUPDATE_SERVER_DEVICE_TOKEN_TTL", "30")
        with live_server(tmp_path_factory.mktemp("short-token-server")) as srv:
            yield srv


def test_a_token_about_to_expire_is_renewed_before_the_call(
    short_token_server: Server, tmp_path: Path
) -> None:
    """Tokens are renewed a minute before their `exp`: a 30 s token is renewed at every
    call, and no call is made with an expired one (no 401 at all)."""
    server = short_token_server
    dev = make_daemon_device(tmp_path / "dev", server, number=43, **QUIET)
    try:
        started(server, dev)
        auths = accepted_auths(server)
        send_inventory_as(dev, "device-43-renewed")
        wait_for("the inventory", lambda: hostname(server, dev) == "device-43-renewed", 30,
                 [dev.log])  # fmt: skip
        assert accepted_auths(server) == auths + 1
        assert metric(server, "pyupdate_http_requests", status="401") == 0
        same_process(dev)
    finally:
        dev.stop()
