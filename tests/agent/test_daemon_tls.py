"""The daemon over TLS and through proxies, against the real `pyupdate-server serve`
(docs/agent.md, "Managed mode": TLS).

`ServerCertificate` names a private CA and the daemon authenticates; without it
(SkipVerify false) the daemon refuses the server with the verification error and
nothing reaches the app; `SkipVerify` connects anyway. `HTTPS_PROXY` / `HTTP_PROXY`
carry every device request through an HTTP proxy (a CONNECT tunnel for https, a
forwarded request for http); a host in `NO_PROXY` is reached directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_agent.daemon.client import DeviceClient, ServerError
from pyupdate_testing.daemon_device import DaemonDevice, make_daemon_device
from pyupdate_testing.host_device import needs_tools, write_module_artifact
from pyupdate_testing.pki import Pki, make_pki
from pyupdate_testing.proxies import HttpProxy
from pyupdate_testing.server import Server, live_server, metric, tls_server
from pyupdate_testing.wait import wait_for

pytestmark = pytest.mark.uboot

QUIET = dict(UpdatePollIntervalSeconds=3600, InventoryPollIntervalSeconds=3600)


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemons inherit this environment: only the proxies a test sets may count."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pki, Server]]:
    root = tmp_path_factory.mktemp("tls-server")
    pki = make_pki(root / "pki")
    with tls_server(root, pki) as server:
        yield pki, server


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("plain-server")) as server:
        yield server


def inventory_arrived(server: Server, dev: DaemonDevice) -> bool:
    assert dev.device_id is not None
    return server.inventory(dev.device_id).get("hostname") == f"device-{dev.number}"


def run_until_inventory(server: Server, dev: DaemonDevice) -> None:
    dev.start()
    try:
        wait_for("the inventory", lambda: inventory_arrived(server, dev), 30, [dev.log])
    finally:
        dev.stop()


def auth_status(server: Server, device_id: str) -> str:
    shown = server.api.get(f"/api/management/v2/devauth/devices/{device_id}").json()
    return str(shown["status"])


def test_daemon_with_server_certificate_authenticates_over_tls(
    tls: tuple[Pki, Server], tmp_path: Path
) -> None:
    pki, server = tls
    dev = make_daemon_device(tmp_path / "dev", server, number=11, ServerCertificate=str(pki.ca))
    assert dev.server_url.startswith("https://")
    run_until_inventory(server, dev)
    assert dev.device_id is not None and auth_status(server, dev.device_id) == "accepted"
    assert "certificate verif" not in dev.log.read_text().lower()


@pytest.mark.parametrize("ca", ["none", "other-ca"])
def test_daemon_without_the_servers_ca_refuses_it_naming_verification(
    tls: tuple[Pki, Server], tmp_path: Path, ca: str
) -> None:
    _, server = tls
    config: dict[str, object] = {"SkipVerify": False}
    if ca == "other-ca":
        config["ServerCertificate"] = str(make_pki(tmp_path / "other").ca)
    number = 12 if ca == "none" else 13
    dev = make_daemon_device(tmp_path / "dev", server, number=number, **config)
    before = metric(server, "pyupdate_device_auth_requests")
    dev.start()
    try:
        wait_for(
            "the verification error",
            lambda: "CERTIFICATE_VERIFY_FAILED" in dev.log.read_text(),
            30,
            [dev.log],
        )
        time.sleep(1)  # a retry or two: still refused, still running
        assert dev.proc is not None and dev.proc.poll() is None
    finally:
        dev.stop()
    errors = [ln for ln in dev.log.read_text().splitlines() if "CERTIFICATE_VERIFY_FAILED" in ln]
    assert "authentication/auth_requests" in errors[0]
    assert "certificate verify failed" in errors[0]
    # nothing got through: no auth request reached the app, the device is not admitted
    assert metric(server, "pyupdate_device_auth_requests") == before
    assert dev.device_id is not None and auth_status(server, dev.device_id) == "preauthorized"
    assert "hostname" not in server.inventory(dev.device_id)


def test_daemon_with_skip_verify_connects_without_the_ca(
    tls: tuple[Pki, Server], tmp_path: Path
) -> None:
    _, server = tls
    dev = make_daemon_device(tmp_path / "dev", server, number=14, SkipVerify=True)
    run_until_inventory(server, dev)
    assert "certificate verification skipped" in dev.log.read_text()


def device_requests(server: Server) -> int:
    """Requests the server's app saw on the device API (any route under /api/devices)."""
    text = server.api.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("pyupdate_http_requests_total{") and 'route="/api/devices/' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


@pytest.mark.parametrize("scheme", ["https", "http"])
@pytest.mark.parametrize("bypass", [False, True], ids=["through-proxy", "no-proxy"])
def test_daemon_requests_go_through_the_proxy_unless_no_proxy(
    request: pytest.FixtureRequest, tmp_path: Path, scheme: str, bypass: bool
) -> None:
    if scheme == "https":
        pki, server = request.getfixturevalue("tls")
        config: dict[str, object] = {"ServerCertificate": str(pki.ca)}
    else:
        server, config = request.getfixturevalue("plain"), {}
    number = 20 + 2 * (scheme == "https") + bypass
    # long intervals: after its first sync the daemon is quiet, so no request is in
    # flight when it is stopped and the proxy's count can be compared with the server's
    dev = make_daemon_device(tmp_path / "dev", server, number=number, **config, **QUIET)
    with HttpProxy() as proxy:
        dev.env_extra = {f"{scheme.upper()}_PROXY": proxy.url}
        if bypass:
            dev.env_extra["NO_PROXY"] = "localhost,127.0.0.1"
        before = device_requests(server)
        dev.start()
        try:
            # the first sync: auth request, inventory, deployment check
            wait_for("the first sync", lambda: device_requests(server) - before >= 3, 30,
                     [dev.log])  # fmt: skip
        finally:
            dev.stop()
        sent = device_requests(server) - before
        seen = proxy.seen()
    assert inventory_arrived(server, dev)
    if bypass:
        assert seen == []
        return
    # every device request the server saw came through the proxy, one connection each
    assert len(seen) == sent, seen
    if scheme == "https":
        assert set(seen) == {f"CONNECT 127.0.0.1:{server.port}"}
    else:
        base = f"http://127.0.0.1:{server.port}/api/devices/v1"
        assert f"POST {base}/authentication/auth_requests" in seen
        assert f"PUT {base}/inventory/device/attributes" in seen


@pytest.fixture(scope="module")
def download_link(
    tls: tuple[Pki, Server], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, bytes]:
    """(link, artifact bytes): a signed download link the TLS server handed out."""
    _, server = tls
    art = write_module_artifact(
        tmp_path_factory.mktemp("art") / "w",
        "single-file",
        {"f": os.urandom(200_000)},
        name="tls-1",
    )
    server.upload(art)
    listed = server.api.get("/api/management/v1/deployments/artifacts").json()
    found = next(a for a in listed if a["name"] == "tls-1")
    shown = server.api.get(f"/api/management/v1/deployments/artifacts/{found['id']}/download")
    return shown.json()["uri"], art.read_bytes()


def read_all(client: DeviceClient, uri: str, **kwargs: object) -> bytes:
    stream = client.open_download(uri, **kwargs)
    try:
        parts: list[bytes] = []
        while chunk := stream.read(1 << 16):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        stream.close()


@pytest.mark.peers
@needs_tools
def test_download_verifies_with_server_certificate_and_uses_the_proxy(
    tls: tuple[Pki, Server], download_link: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    pki, server = tls
    uri, blob = download_link
    assert uri.startswith(f"https://127.0.0.1:{server.port}/")
    with HttpProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        assert read_all(DeviceClient(server.url, ca_file=str(pki.ca)), uri) == blob
        assert proxy.seen() == [f"CONNECT 127.0.0.1:{server.port}"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert read_all(DeviceClient(server.url, ca_file=str(pki.ca)), uri) == blob
        assert len(proxy.seen()) == 1


@pytest.mark.peers
@needs_tools
def test_download_from_an_unverified_server_fails_at_once(
    tls: tuple[Pki, Server], download_link: tuple[str, bytes]
) -> None:
    """A certificate that does not verify is no dropped connection: no resumes."""
    uri, _ = download_link
    resumes: list[int] = []
    started = time.monotonic()
    with pytest.raises(ServerError, match="certificate verify failed"):
        read_all(
            DeviceClient(tls[1].url), uri, max_resumes=3, backoff=0.2, on_resume=resumes.append
        )
    assert resumes == []
    assert time.monotonic() - started < 5
