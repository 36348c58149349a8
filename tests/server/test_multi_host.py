"""Two server hosts behind HAProxy, one PostgreSQL, one object store, and a rollout that
loses a server process to SIGKILL half-way (issue 17, "Processes").

The hosts are network namespaces (pyupdate_testing/netns.py) with their own data dirs:
host 0 runs `serve --workers 2`, host 1 a single process; both share the database, the
store and `secret_key` through one config file, as docs/scale-out.md describes, and
HAProxy in front uses the configuration shown there. The fleet is a few dozen simulated
devices with their own keys, speaking the device API as the Mender client does (through
the proxy, artifacts straight from the store through presigned URLs), and one real
mender 3.4 client. Mid-rollout host 1's server and then one of host 0's workers are
killed with SIGKILL; host 1 comes back later. Every device must finish, every final
status report and log must be kept, and no device may be handed the deployment twice.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from server_helpers import FakeDevice

from pyupdate_testing import haproxy, netns, postgres, s3
from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.device_keys import device_key, pubkey_pem
from pyupdate_testing.mender_client import mender_daemon, single_file_artifact
from pyupdate_testing.server import ADMIN, Server, free_port, server_command

pytestmark = [pytest.mark.netns, pytest.mark.peers, pytest.mark.slow]

DEVICES = 36
FAILING = 6  # every sixth device fails its install and uploads a log, as Mender does
RELEASE = "fleet-2"
NEXT = "/api/devices/v1/deployments/device/deployments/next"
DEPLOYMENTS = "/api/devices/v1/deployments/device/deployments"
PROVIDES = {"artifact_name": "base", "device_type": "qemux86-64"}
SECRET = "multi-host-secret-0123456789abcdef0123456789"
BUCKET = "pyupdate-multi"
# what a device meets while a server dies or the proxy has no server yet: ask again
TRANSIENT = {502, 503, 504}


@dataclass
class Fleet:
    """The running system: the hosts' servers, the proxy, the store, the database."""

    hosts: list[Server]
    front: Server  # the management API through the proxy (never started itself)
    proxy: haproxy.HAProxy
    store: s3.S3Server
    database_url: str  # from this namespace, for checks the API does not show


def _proxy_ready(log: Path, hosts: int) -> bool:
    """Every host's last state in HAProxy's log is up (none logged: never marked down)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    for i in range(hosts):
        states = re.findall(rf"pyupdate_servers/host{i} is (UP|DOWN)", text)
        if states and states[-1] == "DOWN":
            return False
    return True


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    for reason in (postgres.unavailable(), s3.unavailable()):  # root, netns: conftest.py
        if reason is not None:
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"multi-host: {reason} (make test should have installed it)")
            pytest.skip(f"multi-host: {reason}")
    with (
        netns.hosts_network(2) as net,
        postgres.postgres_cluster(network=(net.gateway, net.cidr)) as cluster,
        s3.s3_server(host=net.gateway) as store,
    ):
        store.create_bucket(BUCKET)
        cluster.create_database("multi")
        port = free_port()
        backends = [f"{h.address}:{port}" for h in net.hosts]
        with haproxy.haproxy_front(tmp_path / "proxy", backends) as proxy:
            config = tmp_path / "server.toml"
            settings = {
                "secret_key": SECRET,
                "database_url": cluster.url("multi", host=net.gateway),
                "public_url": proxy.url,
                "forwarded_allow_ips": net.gateway,  # where HAProxy's connections come from
                **store.settings(f"s3://{BUCKET}/fleet"),
            }
            config.write_text("".join(f'{k} = "{v}"\n' for k, v in settings.items()))
            subprocess.run(
                [*server_command(), "user", "create", "--config", str(config),
                 "--data-dir", str(tmp_path / "admin"), "--username", ADMIN[0],
                 "--password", ADMIN[1]],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            hosts = [
                Server(
                    f"http://{h.address}:{port}",
                    port,
                    tmp_path / f"host{i}" / "data",
                    tmp_path / f"host{i}.log",
                    config=config,
                    workers=2 - i,
                    host=h.address,
                    command_prefix=tuple(h.command([])),
                )
                for i, h in enumerate(net.hosts)
            ]
            started: list[Server] = []
            front = Server(proxy.url, port, tmp_path / "front", tmp_path / "front.log")
            try:
                for server in hosts:
                    server.start()
                    started.append(server)
                # HAProxy marked both hosts down while they were starting, and needs its
                # health checks to pass again before it sends anything: until then it
                # answers 503 itself
                log = tmp_path / "proxy" / "haproxy.log"
                _wait("HAProxy to see both hosts up", lambda: _proxy_ready(log, len(hosts)), 60)
                yield Fleet(hosts, front, proxy, store, cluster.url("multi"))
            finally:
                for server in started:
                    server.stop()
                if front._api is not None:
                    front._api.close()


@dataclass
class SimulatedDevice:
    """One device's view: what it was handed, which reports and log the server took."""

    device: FakeDevice
    fails: bool
    handed: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    log: list[dict[str, str]] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    retries: int = 0
    error: BaseException | None = None

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        """As a device does on its next poll: a lost connection or a 5xx is asked again."""
        deadline = time.monotonic() + 90
        while True:
            try:
                r = self.device.client.request(method, url, timeout=10, **kwargs)  # type: ignore[arg-type]
                if r.status_code not in TRANSIENT:
                    return r
            except httpx.TransportError:
                pass
            self.retries += 1
            assert time.monotonic() < deadline, f"{method} {url}: no answer for 90 s"
            time.sleep(0.3)

    def report(self, dep: str, status: str) -> None:
        r = self.request(
            "PUT", f"{DEPLOYMENTS}/{dep}/status", json={"status": status},
            headers=self.device.headers,
        )  # fmt: skip
        assert r.status_code == 204, (status, r.status_code, r.text)
        self.reports.append(status)

    def run(self, artifact: bytes, stop: threading.Event) -> None:
        try:
            self._run(artifact, stop)
        except BaseException as exc:  # handed to the test thread, which fails with it
            self.error = exc

    def _run(self, artifact: bytes, stop: threading.Event) -> None:
        while not stop.is_set():
            r = self.request("GET", NEXT, params=PROVIDES, headers=self.device.headers)
            if r.status_code == 204:
                time.sleep(0.5)
                continue
            assert r.status_code == 200, r.text
            dep, uri = r.json()["id"], r.json()["artifact"]["source"]["uri"]
            self.handed.append(dep)
            self.report(dep, "downloading")
            self.downloads.append(uri)
            body = httpx.get(uri, timeout=30)  # straight from the store, no token
            assert body.status_code == 200 and body.content == artifact, body.status_code
            for status in ("installing", "rebooting"):
                time.sleep(0.4)
                self.report(dep, status)
            time.sleep(0.4)
            if self.fails:
                self.log = [
                    {"timestamp": "2026-12-07T12:00:00Z", "level": "error",
                     "message": f"{self.device.identity['mac']}: install refused"},
                ]  # fmt: skip
                r = self.request(
                    "PUT", f"{DEPLOYMENTS}/{dep}/log", json={"messages": self.log},
                    headers=self.device.headers,
                )  # fmt: skip
                assert r.status_code == 204, r.text
            self.report(dep, "failure" if self.fails else "success")
            return


def _wait(what: str, check: Callable[[], object], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _polls_served(server: Server) -> float:
    """Device polls this host answered (its own /metrics, not through the proxy)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("pyupdate_http_requests_total{") and NEXT in line
    )


def _sql(url: str, query: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def test_a_rollout_survives_a_server_process_killed_mid_way(fleet: Fleet, tmp_path: Path):
    started = time.monotonic()
    front, (host0, host1) = fleet.front, fleet.hosts
    kinds = itertools.cycle(("ec", "ed25519", "rsa"))
    client = httpx.Client(base_url=fleet.proxy.url, timeout=30)
    devices, ids = [], []
    for i in range(DEVICES):
        device = FakeDevice(client, {"mac": f"02:00:00:01:00:{i:02x}"}, device_key(next(kinds), i))
        ids.append(front.preauthorize(device.identity, pubkey_pem(device.key)))
        assert device.authenticate().status_code == 200
        devices.append(SimulatedDevice(device, fails=i % FAILING == FAILING - 1))

    artifact_path = write_test_artifact(
        tmp_path / "fleet.mender", RELEASE, payload=os.urandom(1 << 20)
    )
    artifact = artifact_path.read_bytes()
    front.upload(artifact_path)
    with mender_daemon(tmp_path / "mender", fleet.proxy.url) as mender:
        front.upload(single_file_artifact(tmp_path, RELEASE, mender / "dest"))
        _wait("the mender client's auth request", front.pending_devices, 60)
        (pending,) = front.pending_devices()
        front.accept(pending)
        mender_id = pending["id"]

        stop = threading.Event()
        threads = [
            threading.Thread(target=d.run, args=(artifact, stop), daemon=True) for d in devices
        ]
        for thread in threads:
            thread.start()
        # the proxy spreads the fleet's polls over both hosts
        _wait("polls on both hosts", lambda: min(map(_polls_served, fleet.hosts)) >= 5, 30)

        dep = front.deploy(RELEASE, [*ids, mender_id])

        def downloading() -> int:
            return sum(1 for d in devices if d.reports)

        _wait("a third of the fleet downloading", lambda: downloading() >= DEVICES // 3)
        os.kill(host1.process.pid, signal.SIGKILL)  # host 1's only server process
        host1.process.wait(timeout=10)
        _wait("two thirds downloading", lambda: downloading() >= 2 * DEVICES // 3)
        victim = host0.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)  # one of host 0's two workers
        host1.start_again()  # host 1 comes back; its leftovers are cleaned at start

        for thread in threads:
            thread.join(timeout=150)
        stop.set()
        failed = [(d.device.identity["mac"], d.error) for d in devices if d.error]
        assert not failed, failed
        _wait("the mender client's install", lambda: front.device_statuses(dep)[mender_id]
              in ("success", "failure"), 120)  # fmt: skip
        assert (mender / "dest" / "hello.txt").read_text() == f"installed by {RELEASE}\n"

    statuses = front.device_statuses(dep)
    assert statuses[mender_id] == "success"
    for device, device_id in zip(devices, ids, strict=True):
        expected = "failure" if device.fails else "success"
        assert device.reports == ["downloading", "installing", "rebooting", expected]
        assert statuses[device_id] == expected, device.device.identity  # the last report kept
        log = front.device_log(dep, device_id)
        if device.fails:  # the log is kept, whichever host took it
            assert log is not None and device.log[0]["message"] in log, log
        else:
            assert log is None
        # handed out once, and nothing more after it ended
        assert device.handed == [dep]
        r = device.request("GET", NEXT, params=PROVIDES, headers=device.device.headers)
        assert r.status_code == 204
        # the bytes came from the store through a presigned URL, not through a server
        (uri,) = device.downloads
        assert uri.startswith(fleet.store.endpoint + "/") and "X-Amz-Signature=" in uri
    info = front.deployment(dep)
    assert info["status"] == "finished"
    assert info["statistics"]["success"] == DEVICES - DEVICES // FAILING + 1
    assert info["statistics"]["failure"] == DEVICES // FAILING
    # one hand-out per device in the database too: a second one would count an attempt
    rows = _sql(fleet.database_url, f"SELECT device_id, attempts FROM device_deployments "
                                    f"WHERE deployment_id = '{dep}'")  # fmt: skip
    assert sorted(n for _, n in rows) == [1] * (DEVICES + 1)
    # both hosts served, the killed worker was replaced, and host 1 serves again
    assert victim not in host0.wait_workers()
    assert httpx.get(f"{host1.url}/health/ready", timeout=10).status_code == 200
    retries = sum(d.retries for d in devices)
    print(f"multi-host rollout: {time.monotonic() - started:.0f} s, {retries} requests retried")
