"""Debian's mender-cli 1.9 against a real `pyupdate-server serve` on 127.0.0.1
(the `live_server` fixture, conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyupdate_testing.server import ADMIN, Server

pytestmark = pytest.mark.peers


def mender_cli(server: Server, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(
        ["mender-cli", "--server", server.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_mender_cli_login_upload_list_devices(live_server: Server, tmp_path: Path) -> None:
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


def test_mender_cli_wrong_password_fails(live_server: Server, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    r = mender_cli(live_server, home, "login", "--username", ADMIN[0], "--password", "nope-nope")
    assert r.returncode != 0


@pytest.fixture(autouse=True)
def _need_tools() -> None:
    for tool in ("mender-cli", "mender-artifact"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing")
