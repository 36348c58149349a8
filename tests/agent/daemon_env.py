"""Managed-mode test rig: a real `pyupdate-server serve` on 127.0.0.1, host-mode devices
running `pyupdate daemon` as separate processes, and a byte-counting TCP proxy.

A "reboot" is the daemon running RebootCommand = a script that records the
reboot and SIGKILLs its parent (the daemon), as a power-off would; the test then
plays the bootloader on the env file (bootloader_sim via HostDevice.boot) and
starts the daemon again. Imported by tests/agent/test_daemon_*.py and
bench/agent.py; no conftest imports.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from agent_host import HostDevice, make_host

VENV_BIN = Path(sys.executable).parent
ADMIN = ("admin@example.com", "daemon-test-password")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_cmd() -> list[str]:
    exe = VENV_BIN / "pyupdate-server"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pyupdate_server.cli"]


def wait_for(what: str, check: Callable[[], T | None], timeout: float, logs=()) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    tails = "".join(
        f"\n--- {p} ---\n{Path(p).read_text()[-3000:]}" for p in logs if Path(p).exists()
    )
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tails}")


@dataclass
class Server:
    url: str
    port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]
    _api: httpx.Client | None = None

    @property
    def api(self) -> httpx.Client:
        if self._api is None:
            r = httpx.post(
                f"{self.url}/api/management/v1/useradm/auth/login",
                auth=ADMIN,
                timeout=30,
            )
            r.raise_for_status()
            self._api = httpx.Client(
                base_url=self.url, headers={"Authorization": f"Bearer {r.text}"}, timeout=60
            )
        return self._api

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def start_again(self) -> None:
        """Restart on the same port and data (after stop())."""
        self.process = _spawn(self.data_dir, self.port, self.log, self._public_url)
        wait_healthy(self.url, self.process, self.log)

    _public_url: str | None = None

    # -- management API shortcuts ------------------------------------------
    def upload(self, artifact: Path) -> None:
        with open(artifact, "rb") as fh:
            r = self.api.post(
                "/api/management/v1/deployments/artifacts", files={"artifact": ("a.mender", fh)}
            )
        assert r.status_code == 201, r.text

    def deploy(self, artifact_name: str, devices: list[str], **extra: object) -> str:
        r = self.api.post(
            "/api/management/v1/deployments/deployments",
            json={"name": artifact_name, "artifact_name": artifact_name, "devices": devices}
            | extra,
        )
        assert r.status_code == 201, r.text
        return r.headers["location"].rsplit("/", 1)[1]

    def deployment(self, dep: str) -> dict:
        return self.api.get(f"/api/management/v1/deployments/deployments/{dep}").json()

    def device_statuses(self, dep: str) -> dict[str, str]:
        rows = self.api.get(f"/api/management/v1/deployments/deployments/{dep}/devices").json()
        return {d["id"]: d["status"] for d in rows}

    def device_log(self, dep: str, device: str) -> str | None:
        r = self.api.get(f"/api/management/v1/deployments/deployments/{dep}/devices/{device}/log")
        return r.text if r.status_code == 200 else None

    def abort(self, dep: str) -> None:
        r = self.api.put(
            f"/api/management/v1/deployments/deployments/{dep}/status", json={"status": "aborted"}
        )
        assert r.status_code in (200, 204), r.text

    def preauthorize(self, identity: dict[str, str], pubkey: str) -> str:
        r = self.api.post(
            "/api/management/v2/devauth/devices",
            json={"identity_data": identity, "pubkey": pubkey},
        )
        assert r.status_code == 201, r.text
        return r.headers["location"].rsplit("/", 1)[1]

    def inventory(self, device: str) -> dict[str, object]:
        data = self.api.get(f"/api/management/v1/inventory/devices/{device}").json()
        return {a["name"]: a["value"] for a in data.get("attributes", [])}


def _spawn(data: Path, port: int, log: Path, public_url: str | None) -> subprocess.Popen[bytes]:
    cmd = [*_server_cmd(), "serve", "--data-dir", str(data), "--port", str(port)]
    if public_url:
        cmd += ["--public-url", public_url]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


# A daemon that polls only when told to (check-update, send-inventory, a 401 to recover from),
# and the server routes its metrics count those requests under.
QUIET = dict(UpdatePollIntervalSeconds=3600, InventoryPollIntervalSeconds=3600)
CHECK_ROUTE = "/api/devices/v2/deployments/device/deployments/next"
INVENTORY_ROUTE = "/api/devices/v1/inventory/device/attributes"


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], log: Path, context: ssl.SSLContext | None = None
) -> None:
    """Until /health answers (over TLS with `context`); the server log if it never does."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2, context=context):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def live_server(
    root: Path, public_url: str | None = None, port: int | None = None
) -> Iterator[Server]:
    """`pyupdate-server serve` on 127.0.0.1 with an admin user; stopped on exit."""
    data = root / "server-data"
    subprocess.run(
        [*_server_cmd(), "user", "create", "--data-dir", str(data), "--username", ADMIN[0],
         "--password", ADMIN[1]],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = port or free_port()
    log = root / "server.log"
    proc = _spawn(data, port, log, public_url)
    server = Server(f"http://127.0.0.1:{port}", port, data, log, proc, _public_url=public_url)
    try:
        wait_healthy(server.url, proc, log)
        yield server
    finally:
        server.stop()


class CountingProxy:
    """TCP proxy on 127.0.0.1 that counts bytes each way and can cut a connection.

    `cut_after`: close the first connection whose server->client bytes reach it
    (once). Requests are recorded (the first line and the Range header) to show
    what was asked again after the cut.
    """

    def __init__(
        self, target_port: int, cut_after: int | None = None, hold_after: int | None = None
    ) -> None:
        self.target = target_port
        self.cut_after = cut_after
        self.hold_after = hold_after
        self.holding = threading.Event()
        self._released = threading.Event()
        self.to_client = 0
        self.to_server = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self) -> None:
        self._released.set()

    def reset(self) -> None:
        with self._lock:
            self.to_client = self.to_server = 0
            self.requests.clear()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        sent_back = [0]

        def pump(src: socket.socket, dst: socket.socket, to_client: bool) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if not to_client:
                        self._note_request(data)
                    hold = self.hold_after
                    if to_client and hold is not None and sent_back[0] + len(data) >= hold:
                        self.hold_after = None
                        self.holding.set()  # stall this connection until released
                        self._released.wait()
                        raise ConnectionAbortedError
                    with self._lock:
                        if to_client and self.cut_after is not None:
                            room = self.cut_after - sent_back[0]
                            if len(data) >= room:
                                data = data[:room]
                                self.cut_after = None
                                self.to_client += len(data)
                                dst.sendall(data)
                                raise ConnectionAbortedError
                        if to_client:
                            self.to_client += len(data)
                            sent_back[0] += len(data)
                        else:
                            self.to_server += len(data)
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pump, args=(upstream, client, True), daemon=True).start()
        pump(client, upstream, False)

    def _note_request(self, data: bytes) -> None:
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1", "replace")
        lines = head.split("\r\n")
        if lines and lines[0].split(" ")[0] in ("GET", "POST", "PUT", "PATCH"):
            rng = [ln for ln in lines if ln.lower().startswith("range:")]
            with self._lock:
                self.requests.append(lines[0] + (f" [{rng[0]}]" if rng else ""))

    def close(self) -> None:
        self._stop = True
        self._sock.close()


REBOOT_SCRIPT = """#!/bin/sh
# RebootCommand for host-mode tests: note the reboot, then power off = SIGKILL the daemon
echo reboot >> "{log}"
kill -9 $PPID
sleep 5
"""


@dataclass
class DaemonDevice:
    """A host-mode device (agent_host.HostDevice) plus what managed mode needs."""

    host: HostDevice
    number: int
    server_url: str
    proc: subprocess.Popen[bytes] | None = None
    device_id: str | None = None
    starts: int = 0
    env_extra: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.host.root

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def reboots(self) -> list[str]:
        path = self.root / "reboots"
        return path.read_text().split() if path.exists() else []

    @property
    def identity(self) -> dict[str, str]:
        return {"mac": f"02:00:00:00:{self.number // 256:02x}:{self.number % 256:02x}"}

    def start(self, *extra_args: str) -> None:
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"=== start {self.starts} ===\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pyupdate_agent.cli", *self.host.argv(
                    "--log-level", "info", "daemon", *extra_args)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **self.env_extra},
            )  # fmt: skip

    def wait_stopped(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"daemon {self.number} still runs after {timeout}s\n{self.log.read_text()[-4000:]}"
            ) from None

    def reboot_and_restart(self, timeout: float = 60) -> int:
        """Wait for the daemon to 'power off' (reboot script), boot, start it again."""
        self.wait_stopped(timeout)
        part = self.host.boot()
        self.start()
        return part

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def store_history(self) -> list[tuple[str, str]]:
        import sqlite3

        db = sqlite3.connect(self.host.data / "pyupdate-store.sqlite")
        try:
            return [(str(a), str(b)) for a, b in db.execute(
                "SELECT artifact_name, result FROM history ORDER BY seq")]  # fmt: skip
        finally:
            db.close()

    def show_artifact(self) -> str:
        return self.host.run("show-artifact").stdout.strip()

    def machine_state(self) -> str | None:
        """The state in the store's one record; None when the device holds no deployment."""
        import sqlite3

        path = self.host.data / "pyupdate-store.sqlite"
        if not path.exists():
            return None
        db = sqlite3.connect(path)
        try:
            rows = db.execute("SELECT state FROM machine WHERE id = 1").fetchall()
        except sqlite3.OperationalError:  # no machine table yet
            return None
        finally:
            db.close()
        return str(rows[0][0]) if rows else None


def ed25519_key(path: Path) -> str:
    """Write a device key (PKCS#8 PEM, 0600) and return its public PEM (fast to make)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def make_daemon_device(
    root: Path,
    server: Server,
    number: int = 1,
    server_url: str | None = None,
    preauthorize: bool = True,
    **config: object,
) -> DaemonDevice:
    """A host device configured for `pyupdate daemon` against `server` (or `server_url`)."""
    host = make_host(root)
    dev = DaemonDevice(host, number, server_url or server.url)
    identity = root / "identity"
    identity.write_text("#!/bin/sh\n" + "".join(f"echo {k}={v}\n" for k, v in dev.identity.items()))
    identity.chmod(0o755)
    inventory = root / "inventory"
    inventory.mkdir()
    (inventory / "hostinfo").write_text(f"#!/bin/sh\necho hostname=device-{number}\n")
    (inventory / "hostinfo").chmod(0o755)
    reboot = root / "reboot.sh"
    reboot.write_text(REBOOT_SCRIPT.format(log=root / "reboots"))
    reboot.chmod(0o755)
    key = host.data / "pyupdate-agent.pem"
    pubkey = ed25519_key(key)
    settings: dict[str, object] = dict(
        ServerURL=dev.server_url,
        UpdatePollIntervalSeconds=1,
        InventoryPollIntervalSeconds=30,
        RetryPollIntervalSeconds=1,
        PollJitter=0.1,
        RebootCommand=str(reboot),
        RebootWaitSeconds=30,
        CommitReportDeadlineSeconds=20,
        IdentityScript=str(identity),
        InventoryDirs=[str(inventory)],
        RequestTimeoutSeconds=5,
        DeviceKeyType="ed25519",
        ArtifactInfoFiles=[str(root / "artifact_info")],
    )
    host.write_config(**(settings | config))
    (root / "artifact_info").write_text("artifact_name=release-0\n")
    if preauthorize:
        dev.device_id = server.preauthorize(dev.identity, pubkey)
    return dev


def deployment_done(server: Server, dep: str) -> dict | None:
    shown = server.deployment(dep)
    return shown if shown["status"] == "finished" else None


def log_lines(dev: DaemonDevice) -> list[dict]:
    """The JSON lines of every deployment log on the device."""
    lines = []
    for path in sorted(dev.host.data.glob("deployments.*.log")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- a local HTTP server we control (bad-input and client tests) -------------


@dataclass
class Seen:
    """One request a LocalHTTP server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


Handler = Callable[["_LocalHandler", Seen], None]


class _LocalHandler(http.server.BaseHTTPRequestHandler):
    server: _LocalServer
    protocol_version = "HTTP/1.0"  # one request per connection: a close ends each body

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                    body, time.monotonic())  # fmt: skip
        with self.server.lock:
            self.server.seen.append(seen)
        with contextlib.suppress(OSError):  # the client went away (timeouts under test)
            self.server.handle_request_fn(self, seen)

    do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = _any

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """A complete answer with a correct Content-Length (unless `headers` sets one)."""
        self.send_response(status)
        headers = {"Content-Length": str(len(body))} | (headers or {})
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status: int, doc: object) -> None:
        self.reply(status, json.dumps(doc).encode(), {"Content-Type": "application/json"})


class _LocalServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    handle_request_fn: Handler
    seen: list[Seen]
    lock: threading.Lock


class LocalHTTP:
    """`http.server` in a thread on 127.0.0.1; every request goes to `handle(h, seen)`."""

    def __init__(self, handle: Handler) -> None:
        self._server = _LocalServer(("127.0.0.1", 0), _LocalHandler)
        self._server.handle_request_fn = handle
        self._server.seen = []
        self._server.lock = threading.Lock()
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )  # a short poll: shutdown() waits for it
        self._thread.start()

    @property
    def seen(self) -> list[Seen]:
        with self._server.lock:
            return list(self._server.seen)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fake_token(lifetime: float = 3600) -> str:
    """A JWT-shaped token with an `exp` claim (the agent reads only `exp`)."""

    def part(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(time.time() + lifetime)})}.c2ln"


NEXT_PATHS = (
    "/api/devices/v2/deployments/device/deployments/next",
    "/api/devices/v1/deployments/device/deployments/next",
)


class FakeDeviceAPI:
    """The device API played by a LocalHTTP server, with one part misbehaving.

    Authentication, inventory, status and log answer as the real server does.
    The deployment check goes to `check` (default: hand out `deployment` until
    the device reports a final status, then 204) and everything under
    `/download/` to `download`. `statuses` and `logs` record what the device
    reported.
    """

    def __init__(
        self,
        check: Handler | None = None,
        download: Handler | None = None,
        artifact_name: str = "release-bad",
        device_types: tuple[str, ...] = ("test-device",),
    ) -> None:
        self.check = check or self._hand_out
        self.download = download
        self.artifact_name = artifact_name
        self.device_types = device_types
        self.statuses: list[str] = []
        self.logs: list[dict] = []
        self.http = LocalHTTP(self._route)
        self.url = self.http.url

    def deployment(self) -> dict:
        return {
            "id": "dep-1",
            "artifact": {
                "artifact_name": self.artifact_name,
                "source": {"uri": f"{self.url}/download/dep-1", "expire": "2099-01-01T00:00:00Z"},
                "device_types_compatible": list(self.device_types),
            },
        }

    def _hand_out(self, h: _LocalHandler, seen: Seen) -> None:
        if any(s in ("success", "failure", "already-installed") for s in self.statuses):
            h.reply(204)
        else:
            h.reply_json(200, self.deployment())

    def _route(self, h: _LocalHandler, seen: Seen) -> None:
        path = seen.path.split("?")[0]
        if path.endswith("/authentication/auth_requests"):
            h.reply(200, fake_token().encode(), {"Content-Type": "application/jwt"})
        elif path.endswith("/inventory/device/attributes"):
            h.reply(200)
        elif path in NEXT_PATHS:
            self.check(h, seen)
        elif path.endswith("/status"):
            self.statuses.append(json.loads(seen.body)["status"])
            h.reply(204)
        elif path.endswith("/log"):
            self.logs.append(json.loads(seen.body))
            h.reply(204)
        elif path.startswith("/download/") and self.download is not None:
            self.download(h, seen)
        else:
            h.reply(404, b'{"error":"not found"}')

    def checks(self) -> list[Seen]:
        return [s for s in self.http.seen if s.path.split("?")[0] in NEXT_PATHS]

    def downloads(self) -> list[Seen]:
        return [s for s in self.http.seen if s.path.startswith("/download/")]

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> FakeDeviceAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
