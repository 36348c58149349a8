"""Debian's mender-cli 1.9 against a real `pyupdate-server serve` on 127.0.0.1.

Also holds the `live_server` fixture the mender client test reuses.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.peers

VENV_BIN = Path(sys.executable).parent
ADMIN = ("admin@example.com", "peer-test-password")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def token(self) -> str:
        import base64

        req = urllib.request.Request(
            f"{self.url}/api/management/v1/useradm/auth/login",
            method="POST",
            headers={
                "Authorization": "Basic "
                + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
            },
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()


def _server_cmd() -> list[str]:
    exe = VENV_BIN / "pyupdate-server"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pyupdate_server.cli"]


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    data = tmp_path / "server-data"
    subprocess.run(
        [
            *_server_cmd(),
            "user",
            "create",
            "--data-dir",
            str(data),
            "--username",
            ADMIN[0],
            "--password",
            ADMIN[1],
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*_server_cmd(), "serve", "--data-dir", str(data), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield LiveServer(url, data, log, proc)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def mender_cli(server: LiveServer, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(
        ["mender-cli", "--server", server.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_mender_cli_login_upload_list_devices(live_server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    r = mender_cli(live_server, home, "login", "--username", ADMIN[0], "--password", ADMIN[1])
    assert r.returncode == 0, r.stderr
    assert "login successful" in r.stdout + r.stderr

    payload = tmp_path / "hello.txt"
    payload.write_text("hello\n")
    artifact = tmp_path / "cli.mender"
    subprocess.run(
        [
            "mender-artifact",
            "write",
            "module-image",
            "-T",
            "single-file",
            "-t",
            "qemux86-64",
            "-n",
            "cli-release-1",
            "-f",
            str(payload),
            "-o",
            str(artifact),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    r = mender_cli(
        live_server, home, "artifacts", "upload", str(artifact), "--description", "from mender-cli"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "upload successful" in r.stdout + r.stderr

    # a second upload of the same artifact is refused (409), and mender-cli says so
    r = mender_cli(live_server, home, "artifacts", "upload", str(artifact))
    assert r.returncode != 0

    r = mender_cli(live_server, home, "artifacts", "list")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cli-release-1" in r.stdout

    r = mender_cli(live_server, home, "devices", "list")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mender_cli_wrong_password_fails(live_server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    r = mender_cli(live_server, home, "login", "--username", ADMIN[0], "--password", "nope-nope")
    assert r.returncode != 0


@pytest.fixture(autouse=True)
def _need_tools() -> None:
    for tool in ("mender-cli", "mender-artifact"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing")
