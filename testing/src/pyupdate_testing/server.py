"""A throwaway `pyupdate-server serve` on 127.0.0.1, and its management API.

`live_server(root)` creates an admin user in a fresh data dir under `root`,
starts the server on a free port (or the one given) in its own process group,
waits until /health answers, and stops it on exit. Options the tests and
benchmarks need: a public URL (devices reach it through a proxy), TLS with a
private CA (pki.py), a settings file, a data dir prepared beforehand (a
preloaded database), a database URL (PostgreSQL, postgres.py; several servers on
one database), several worker processes (`--workers`, `Server.worker_pids`), and a
restart on the same port and data (`Server.start_again`).
"""

from __future__ import annotations

import contextlib
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pyupdate_host.qemutest.server import (
    create_user,
    free_port,
    server_command,
    start_process,
    stop_process,
)
from pyupdate_testing.pki import Pki

# the process part is the shipped launcher's (pyupdate-qemu-test); this adds what tests need
__all__ = ["ADMIN", "MANAGEMENT", "Server", "free_port", "live_server", "server_command"]

ADMIN = ("admin@example.com", "daemon-test-password")
MANAGEMENT = "/api/management"


@dataclass
class Server:
    """A running `pyupdate-server serve` and shortcuts to its management API.

    Args:
        url: http(s)://127.0.0.1:port.
        port: the port it listens on.
        data_dir: its data dir (database, artifacts).
        log: its stdout and stderr, appended to across restarts.
        public_url: the URL it hands devices for downloads, when not `url`.
        pki: the CA and certificate it serves TLS with, or None for plain HTTP.
        config: its TOML settings file (--config), or None for the defaults.
        database_url: its --database-url, or None for server.db in the data dir.
        workers: its --workers; with more than one, `process` is their parent.
        host: its --host (an address in a network namespace, netns.py).
        command_prefix: what runs the command, e.g. `ip netns exec NAME` (netns.Host).

    `process` (the server, leader of its own process group) exists once `start()` ran.
    """

    url: str
    port: int
    data_dir: Path
    log: Path
    public_url: str | None = None
    pki: Pki | None = None
    config: Path | None = None
    database_url: str | None = None
    workers: int = 1
    host: str = "127.0.0.1"
    command_prefix: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] = field(init=False, repr=False)
    _api: httpx.Client | None = field(default=None, repr=False)

    @property
    def token(self) -> str:
        """A fresh management token for ADMIN (for clients other than `api`, e.g. curl)."""
        verify: ssl.SSLContext | bool = self.pki.client_context() if self.pki else True
        r = httpx.post(
            f"{self.url}{MANAGEMENT}/v1/useradm/auth/login", auth=ADMIN, timeout=30, verify=verify
        )
        r.raise_for_status()
        return r.text

    @property
    def api(self) -> httpx.Client:
        """An httpx client logged in as ADMIN (trusting only `pki`'s CA under TLS)."""
        if self._api is None:
            verify: ssl.SSLContext | bool = self.pki.client_context() if self.pki else True
            self._api = httpx.Client(
                base_url=self.url,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=60,
                verify=verify,
            )
        return self._api

    def stop(self) -> None:
        stop_process(self.process, timeout=10)

    def start(self) -> None:
        """`pyupdate-server serve` with these settings, until /health answers (else stopped)."""
        cmd = [*self.command_prefix, *server_command(), "serve"]
        cmd += [*_options(self.config, self.data_dir, self.database_url), "--port", str(self.port)]
        if self.host != "127.0.0.1":
            cmd += ["--host", self.host]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        if self.public_url:
            cmd += ["--public-url", self.public_url]
        if self.pki:
            cmd += ["--tls-cert", str(self.pki.cert), "--tls-key", str(self.pki.key)]
        self.process = start_process(cmd, self.log, self.url, self._client_context())
        if self.workers > 1:
            try:
                self.wait_workers()
            except BaseException:
                self.stop()
                raise

    def worker_pids(self) -> list[int]:
        """The worker processes under a `--workers N` parent (uvicorn spawns them)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue  # gone meanwhile
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and b"spawn_main" in cmdline:
                pids.append(int(entry.name))
        return sorted(pids)

    def wait_workers(self, timeout: float = 60) -> list[int]:
        """Until `workers` workers run and each has finished its start-up; their pids."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.worker_pids()
            started = set(re.findall(rb"\[(\d+)\] started", self.log.read_bytes()))
            if len(pids) == self.workers and {str(p).encode() for p in pids} <= started:
                return pids
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def start_again(self) -> None:
        """Restart on the same port and data (after stop())."""
        self.start()

    def _client_context(self) -> ssl.SSLContext | None:
        return self.pki.client_context() if self.pki else None

    # -- management API shortcuts ------------------------------------------
    def upload(self, artifact: Path) -> None:
        with open(artifact, "rb") as fh:
            r = self.api.post(
                f"{MANAGEMENT}/v1/deployments/artifacts", files={"artifact": ("a.mender", fh)}
            )
        assert r.status_code == 201, r.text

    def deploy(self, artifact_name: str, devices: list[str], **extra: object) -> str:
        r = self.api.post(
            f"{MANAGEMENT}/v1/deployments/deployments",
            json={"name": artifact_name, "artifact_name": artifact_name, "devices": devices}
            | extra,
        )
        assert r.status_code == 201, r.text
        return r.headers["location"].rsplit("/", 1)[1]

    def deployment(self, dep: str) -> dict:
        return self.api.get(f"{MANAGEMENT}/v1/deployments/deployments/{dep}").json()

    def device_statuses(self, dep: str) -> dict[str, str]:
        rows = self.api.get(f"{MANAGEMENT}/v1/deployments/deployments/{dep}/devices").json()
        return {d["id"]: d["status"] for d in rows}

    def device_log(self, dep: str, device: str) -> str | None:
        r = self.api.get(f"{MANAGEMENT}/v1/deployments/deployments/{dep}/devices/{device}/log")
        return r.text if r.status_code == 200 else None

    def abort(self, dep: str) -> None:
        r = self.api.put(
            f"{MANAGEMENT}/v1/deployments/deployments/{dep}/status", json={"status": "aborted"}
        )
        assert r.status_code in (200, 204), r.text

    def preauthorize(self, identity: dict[str, str], pubkey: str) -> str:
        r = self.api.post(
            f"{MANAGEMENT}/v2/devauth/devices",
            json={"identity_data": identity, "pubkey": pubkey},
        )
        assert r.status_code == 201, r.text
        return r.headers["location"].rsplit("/", 1)[1]

    def pending_devices(self) -> list[dict]:
        """Devices whose auth request waits for a decision, with their auth sets."""
        r = self.api.get(
            f"{MANAGEMENT}/v2/devauth/devices", params={"status": "pending", "per_page": 500}
        )
        r.raise_for_status()
        return r.json()

    def accept(self, device: dict) -> None:
        """Accept a pending device (an entry of `pending_devices()`) by its first auth set."""
        auth_set = device["auth_sets"][0]["id"]
        r = self.api.put(
            f"{MANAGEMENT}/v2/devauth/devices/{device['id']}/auth/{auth_set}/status",
            json={"status": "accepted"},
        )
        assert r.status_code in (200, 204), r.text

    def inventory(self, device: str) -> dict[str, object]:
        data = self.api.get(f"{MANAGEMENT}/v1/inventory/devices/{device}").json()
        return {a["name"]: a["value"] for a in data.get("attributes", [])}


def _options(config: Path | None, data_dir: Path, database_url: str | None) -> list[str]:
    return [
        *(["--config", str(config)] if config else []),
        "--data-dir", str(data_dir),
        *(["--database-url", database_url] if database_url else []),
    ]  # fmt: skip


@contextlib.contextmanager
def live_server(
    root: Path,
    public_url: str | None = None,
    port: int | None = None,
    pki: Pki | None = None,
    data_dir: Path | None = None,
    config: Path | None = None,
    database_url: str | None = None,
    create_admin: bool = True,
    workers: int = 1,
) -> Iterator[Server]:
    """`pyupdate-server serve` on 127.0.0.1 with an ADMIN user; stopped on exit.

    Args:
        root: where its data dir (`server-data`, unless `data_dir`) and `server.log` go.
        public_url: passed as --public-url (devices behind a proxy download through it).
        port: the port to listen on; a free one when None.
        pki: serve HTTPS with this certificate; `api` then trusts only its CA.
        data_dir: a data dir to use as it is (e.g. with a preloaded database).
        config: a TOML settings file for both `user create` and `serve` (--config).
        database_url: the database for both (--database-url), e.g. a PostgreSQL one
            from postgres.py; several servers may share it (and the data dir).
        create_admin: create ADMIN first; False for a second server on a database
            that has it already.
        workers: `serve --workers`; the start waits until every worker has started.
    """
    root.mkdir(parents=True, exist_ok=True)
    data = data_dir or root / "server-data"
    if create_admin:
        create_user(_options(config, data, database_url), ADMIN)
    port = port or free_port()
    scheme = "https" if pki else "http"
    server = Server(
        f"{scheme}://127.0.0.1:{port}", port, data, root / "server.log", public_url, pki, config,
        database_url, workers,
    )  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        if server._api is not None:
            server._api.close()
        server.stop()


@contextlib.contextmanager
def tls_server(root: Path, pki: Pki) -> Iterator[Server]:
    """`live_server` speaking HTTPS with `pki`'s certificate (--tls-cert, --tls-key)."""
    with live_server(root, pki=pki) as server:
        yield server


def metric(server: Server, name: str, **labels: str) -> int:
    """Sum of a Prometheus counter over the series whose labels include `labels`."""
    text = server.api.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}_total\{{(.*)\}} (\S+)$", line)
        if match is None:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return int(total)
