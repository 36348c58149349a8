"""Update modules through pyupdate, judged by Debian's mender 3.4 (docs/update-module.md).

* A probe module of ours (it supports rollback and can be told to fail) plus
  logging state scripts: the sequence of module calls and scripts must equal
  mender 3.4's own, run on the same artifact in a private mount namespace.
* Debian's `single-file`, `directory` and `script` modules from
  /usr/share/mender/modules/v3, with artifacts from Debian's mender-artifact.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from pyupdate_testing.host_device import DEVICE_TYPE, HostDevice, make_host, write_module_artifact

pytestmark = [pytest.mark.peers, pytest.mark.uboot]

MENDER_MODULES = Path("/usr/share/mender/modules/v3")

PROBE = """#!/bin/sh
echo "module $1" >> "$PROBE_LOG"
case "$1" in
  SupportsRollback) echo Yes ;;
  NeedsArtifactReboot) echo No ;;
  ArtifactInstall) if grep -q fail "$2/header/meta-data"; then echo "told to fail" >&2; exit 3; fi ;;
esac
exit 0
"""
SCRIPT_STATES = [
    f"{state}_{action}_01"
    for state in ("ArtifactInstall", "ArtifactCommit", "ArtifactRollback", "ArtifactFailure")
    for action in ("Enter", "Leave", "Error")
    if not (state in ("ArtifactRollback", "ArtifactFailure") and action == "Error")
]
SCRIPT = '#!/bin/sh\necho "script {name}" >> "$PROBE_LOG"\n'


@pytest.fixture
def host(tmp_path: Path) -> HostDevice:
    dev = make_host(tmp_path / "dev")
    probe_dir = dev.modules
    (probe_dir / "probe").write_text(PROBE)
    (probe_dir / "probe").chmod(0o755)
    return dev


def probe_artifact(work: Path, name: str, fail: bool) -> Path:
    scripts = {s: SCRIPT.format(name=s) for s in SCRIPT_STATES}
    return write_module_artifact(
        work,
        "probe",
        {"f.txt": b"hello\n"},
        name=name,
        meta={"x": "fail"} if fail else {"x": "ok"},
        scripts=scripts,
    )


def run_mender(scratch: Path, modules: Path, log: Path, *args: str) -> int:
    """mender 3.4 with our modules dir and artifact_info, nothing on the host changed."""
    etc = scratch / "etc-mender"
    data = scratch / "data"
    if not etc.exists():
        etc.mkdir(parents=True)
        (etc / "artifact_info").write_text("artifact_name=base\n")
        data.mkdir()
        (data / "device_type").write_text(f"device_type={DEVICE_TYPE}\n")
        (scratch / "mender.conf").write_text("{}")
    inner = (
        f"mount --bind {modules} {MENDER_MODULES} && mount --bind {etc} /etc/mender && "
        f"exec mender --config {scratch / 'mender.conf'} --data {data} --no-syslog "
        + " ".join(args)
    )
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", inner],
        env={**os.environ, "PROBE_LOG": str(log)},
        capture_output=True,
        text=True,
    )
    return proc.returncode


def run_ours(host: HostDevice, log: Path, *args: str) -> int:
    proc = host.run(*args, env={**os.environ, "PROBE_LOG": str(log)})
    return proc.returncode


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.root
@pytest.mark.parametrize(
    ("fail", "then"),
    [(False, "commit"), (False, "rollback"), (True, None)],
    ids=["install-commit", "install-rollback", "install-fails"],
)
def test_probe_call_sequence_equals_mender(host, tmp_path, fail, then):
    art = probe_artifact(tmp_path / "art", "probe-1", fail)
    theirs, ours = tmp_path / "mender.log", tmp_path / "ours.log"
    rc_mender = [run_mender(tmp_path / "mender", host.modules, theirs, "install", str(art))]
    rc_ours = [run_ours(host, ours, "install", str(art))]
    if then:
        rc_mender.append(run_mender(tmp_path / "mender", host.modules, theirs, then))
        rc_ours.append(run_ours(host, ours, then))
    assert calls(ours) == calls(theirs)
    assert [rc != 0 for rc in rc_ours] == [rc != 0 for rc in rc_mender]
    assert calls(ours)  # the probe did run


def show_artifact(host: HostDevice) -> str:
    return host.run("show-artifact").stdout.strip()


def test_debian_single_file_install_commit_then_rollback(host, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    target = dest / "motd"
    target.write_text("old\n")

    def artifact(name: str, body: bytes) -> Path:
        files = {
            "dest_dir": str(dest).encode(),
            "filename": b"motd",
            "permissions": b"0640",
            "motd": body,
        }
        return write_module_artifact(tmp_path / name, "single-file", files, name=name)

    assert host.run("install", str(artifact("sf-1", b"new one\n"))).returncode == 0
    assert target.read_text() == "new one\n"
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    assert host.run("commit").returncode == 0
    assert show_artifact(host) == "sf-1"
    assert host.run("install", str(artifact("sf-2", b"newer\n"))).returncode == 0
    assert target.read_text() == "newer\n"
    assert host.run("rollback").returncode == 0
    assert target.read_text() == "new one\n"
    assert show_artifact(host) == "sf-1"
    assert not (host.data / "modules" / "v3" / "payloads" / "0000").exists()


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_debian_directory_install_then_rollback(host, tmp_path):
    dest = tmp_path / "www"
    dest.mkdir()
    (dest / "index.html").write_text("v0")
    files = {
        "update.tar": _tar({"index.html": b"v1", "new.css": b"x"}),
        "dest_dir": str(dest).encode(),
    }
    art = write_module_artifact(tmp_path / "dir1", "directory", files, name="dir-1")
    assert host.run("install", str(art)).returncode == 0
    assert sorted(p.name for p in dest.iterdir()) == ["index.html", "new.css"]
    assert (dest / "index.html").read_text() == "v1"
    assert host.run("rollback").returncode == 0
    assert sorted(p.name for p in dest.iterdir()) == ["index.html"]
    assert (dest / "index.html").read_text() == "v0"
    assert show_artifact(host) == "unknown"


def test_debian_script_module_runs_and_commits_at_once(host, tmp_path):
    marker = tmp_path / "ran"
    files = {"hello.sh": f"#!/bin/sh\necho ran > {marker}\n".encode()}
    art = write_module_artifact(tmp_path / "s1", "script", files, name="script-1")
    proc = host.run("install", str(art))
    assert proc.returncode == 0, proc.stderr
    assert "committed" in proc.stdout  # no rollback support: committed at once, like mender
    assert marker.read_text() == "ran\n"
    assert show_artifact(host) == "script-1"
    assert host.run("rollback").returncode == 2


def test_debian_script_module_failure_is_recorded(host, tmp_path):
    files = {"bad.sh": b"#!/bin/sh\necho broken >&2\nexit 7\n"}
    art = write_module_artifact(tmp_path / "s2", "script", files, name="script-bad")
    proc = host.run("install", str(art))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "ArtifactInstall failed" in proc.stderr
    assert show_artifact(host) == "unknown"
    logs = "".join(p.read_text() for p in host.data.glob("deployments.*.log"))
    assert "broken" in logs  # the script's stderr reached the deployment log


@pytest.fixture(autouse=True)
def _need_modules():
    for name in ("single-file", "directory", "script"):
        if not (MENDER_MODULES / name).exists() and shutil.which("mender"):
            pytest.fail(f"{MENDER_MODULES / name} missing although mender is installed")
