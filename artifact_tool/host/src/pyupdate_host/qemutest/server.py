"""A throw-away bundled server, as pyupdate-qemu-test and `make demo` drive it: start, admit, deploy, watch.

A real `pyupdate-server serve` on 127.0.0.1 with its embedded SQLite, and a
small client of its management API (Mender's paths) over urllib.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

ADMIN = ("admin@example.com", "demo-password-1")
MGMT = "/api/management"
FINAL = {"success", "failure", "aborted", "already-installed", "noartifact", "decommissioned"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command() -> list[str]:
    """`pyupdate-server` beside this Python (a venv), else its module, else from PATH."""
    exe = Path(sys.executable).parent / "pyupdate-server"
    if exe.exists():
        return [str(exe)]
    if importlib.util.find_spec("pyupdate_server") is not None:
        return [sys.executable, "-m", "pyupdate_server.cli"]
    return [shutil.which("pyupdate-server") or "pyupdate-server"]


def available() -> bool:
    """Whether a bundled server can be started from here (the managed scenarios need one)."""
    cmd = server_command()
    return Path(cmd[0]).exists() or len(cmd) > 1 or shutil.which(cmd[0]) is not None


def wait_healthy(
    url: str,
    process: subprocess.Popen[bytes],
    log: Path,
    context: ssl.SSLContext | None = None,
    timeout: float = 60,
) -> None:
    """Until `url`/health answers (over TLS with `context`); else an error with the log's end."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2, context=context):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
                raise RuntimeError(f"pyupdate-server did not start ({log}):\n{tail}") from None
            time.sleep(0.1)


def start_process(
    command: list[str], log: Path, url: str, context: ssl.SSLContext | None = None
) -> subprocess.Popen[bytes]:
    """`command` (a `pyupdate-server serve`) as leader of its own process group, its
    output appended to `log`, once `url` answers; stopped again if it never does."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_healthy(url, process, log, context)
    except BaseException:
        stop_process(process)
        raise
    return process


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM to the process group (workers included), SIGKILL if it outstays `timeout`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def create_user(options: list[str], user: tuple[str, str]) -> None:
    """`pyupdate-server user create` with `options` (--data-dir, --config, ...)."""
    subprocess.run(
        [*server_command(), "user", "create", *options, "--username", user[0],
         "--password", user[1]],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


class Server:
    """`pyupdate-server serve` on 127.0.0.1 in its own process group; `stop()` ends it."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        create_user(["--data-dir", str(data_dir)], ADMIN)
        self.process = start_process(
            [*server_command(), "serve", "--data-dir", str(data_dir), "--port", str(self.port)],
            log, self.url,
        )  # fmt: skip

    def stop(self) -> None:
        stop_process(self.process)


class Management:
    """The management API as a user sees it (login once, then a bearer token)."""

    def __init__(self, url: str, user: tuple[str, str] = ADMIN) -> None:
        self.url = url
        basic = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        self.token = self._call("POST", "/v1/useradm/auth/login", auth=f"Basic {basic}").decode()

    def _call(self, method: str, path: str, body: bytes | None = None,
              content_type: str = "application/json", auth: str | None = None) -> bytes:  # fmt: skip
        request = urllib.request.Request(f"{self.url}{MGMT}{path}", data=body, method=method)
        request.add_header("Authorization", auth or f"Bearer {self.token}")
        if body is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.read()
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"{method} {path}: {err.code} {err.read()[:300]!r}") from None

    def _json(self, method: str, path: str, doc: object | None = None) -> object:
        data = self._call(method, path, json.dumps(doc).encode() if doc is not None else None)
        return json.loads(data) if data else None

    # devices
    def devices(self, status: str | None = None) -> list[dict]:
        query = f"?status={status}" if status else ""
        return self._json("GET", f"/v2/devauth/devices{query}")  # type: ignore[return-value]

    def accept(self, device: dict) -> None:
        auth_set = device["auth_sets"][0]["id"]
        self._json("PUT", f"/v2/devauth/devices/{device['id']}/auth/{auth_set}/status",
                   {"status": "accepted"})  # fmt: skip

    def preauthorize(self, identity: dict[str, str], pubkey: str) -> str:
        """Admit a device before it asks (Mender's preauthorization); its id."""
        request = urllib.request.Request(
            f"{self.url}{MGMT}/v2/devauth/devices",
            data=json.dumps({"identity_data": identity, "pubkey": pubkey}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]

    def inventory(self, device_id: str) -> dict[str, object]:
        doc = self._json("GET", f"/v1/inventory/devices/{device_id}")
        return {a["name"]: a["value"] for a in doc["attributes"]}  # type: ignore[index]

    # artifacts and deployments
    def upload(self, artifact: Path) -> None:
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\n'
            f"{artifact.name}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f'name="artifact"; filename="{artifact.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        body = head + artifact.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        self._call("POST", "/v1/deployments/artifacts", body,
                   f"multipart/form-data; boundary={boundary}")  # fmt: skip

    def artifacts(self) -> list[dict]:
        return self._json("GET", "/v1/deployments/artifacts")  # type: ignore[return-value]

    def deploy(self, name: str, artifact_name: str, devices: list[str], **fields: object) -> str:
        """A deployment; `fields`: the request's other members (phases, install_window...)."""
        body = {"name": name, "artifact_name": artifact_name, "devices": devices} | fields
        request = urllib.request.Request(
            f"{self.url}{MGMT}/v1/deployments/deployments",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]

    def deployment(self, deployment_id: str) -> dict:
        return self._json("GET", f"/v1/deployments/deployments/{deployment_id}")  # type: ignore[return-value]

    def set_status(self, deployment_id: str, status: str) -> None:
        """Pause, resume or abort: "paused", "inprogress" or "aborted"."""
        self._json("PUT", f"/v1/deployments/deployments/{deployment_id}/status",
                   {"status": status})  # fmt: skip

    def device_status(self, deployment_id: str, device_id: str) -> dict:
        rows = self._json("GET", f"/v1/deployments/deployments/{deployment_id}/devices")
        return next(r for r in rows if r["id"] == device_id)  # type: ignore[union-attr]

    def device_log(self, deployment_id: str, device_id: str) -> str:
        return self._call(
            "GET", f"/v1/deployments/deployments/{deployment_id}/devices/{device_id}/log"
        ).decode()


def wait_for(what: str, probe: Callable[[], object], timeout: float, every: float = 1.0) -> object:
    """Poll `probe` until it returns something truthy; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def pending_device(mgmt: Management) -> dict | None:
    devices = mgmt.devices("pending")
    return devices[0] if devices else None


def uploaded_log(mgmt: Management, deployment_id: str, device_id: str) -> str | None:
    """The device's deployment log; None while the server has none.

    A device sends its log after its final status, as mender's client does, so
    the log can arrive a moment after the deployment shows `failure`.
    """
    try:
        return mgmt.device_log(deployment_id, device_id).strip() or None
    except RuntimeError as err:
        if ": 404 " in str(err):
            return None
        raise


def stand_in_pubkey() -> str:
    """A fresh Ed25519 public key (PEM) for a device that never runs (openssl, so the
    tool needs no crypto library of its own)."""
    key = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519"],
                         capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    return subprocess.run(["openssl", "pkey", "-pubout"], input=key,
                          capture_output=True, check=True, timeout=60).stdout.decode()  # fmt: skip


def final_status(mgmt: Management, deployment_id: str, device_id: str) -> str | None:
    status = mgmt.device_status(deployment_id, device_id)["status"]
    return status if status in FINAL else None
