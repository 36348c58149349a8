"""Debian's mender 3.4 daemon as a device of a test server, and artifacts it installs.

`mender_daemon(root, server_url)` runs `mender daemon` in a private mount namespace
(root): temp dirs are bind-mounted over /etc/mender, the update modules, identity and
inventory dirs, so nothing on the host changes. It polls every 2 s, installs
single-file module artifacts into `root/dest`, and has a `fail-module` that fails in
ArtifactInstall. `single_file_artifact` and `failing_artifact` write artifacts for it
with Debian's mender-artifact; `gate_script` holds the client in a state until the
test lets it go.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

DEVICE_TYPE = "pyupdate-peer"
MAC = "02:00:00:00:00:42"
MODULES = Path("/usr/share/mender/modules/v3")


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@contextlib.contextmanager
def mender_daemon(root: Path, server_url: str, mac: str = MAC) -> Iterator[Path]:
    """The daemon of a device with identity mac=`mac` talking to `server_url`; yields
    `root` (its log is root/daemon.log, what it installs lands in root/dest)."""
    etc, modules, identity, inventory, data = (
        root / n for n in ("etc", "modules", "identity", "inventory", "data")
    )
    for d in (etc, modules, identity, inventory, data, root / "dest"):
        d.mkdir(parents=True)
    shutil.copy2(MODULES / "single-file", modules / "single-file")
    _script(
        modules / "fail-module",
        # supports rollback, so the device keeps its previous artifact name
        '#!/bin/sh\ncase "$1" in\n  SupportsRollback) echo Yes;;\n'
        '  ArtifactInstall) echo "fail-module: refusing to install" >&2; exit 1;;\n'
        "esac\nexit 0\n",
    )
    _script(identity / "mender-device-identity", f"#!/bin/sh\necho mac={mac}\n")
    _script(inventory / "mender-inventory-peer", "#!/bin/sh\necho hostname=peer-test\n")
    (etc / "artifact_info").write_text("artifact_name=base-0\n")
    (data / "device_type").write_text(f"device_type={DEVICE_TYPE}\n")
    config = {
        "ServerURL": server_url,
        "UpdatePollIntervalSeconds": 2,
        "InventoryPollIntervalSeconds": 5,
        "RetryPollIntervalSeconds": 1,
        "DeviceTypeFile": str(data / "device_type"),
        # the artifact's state scripts are stored here, never in the host's /var/lib/mender
        "ArtifactScriptsPath": str(data / "scripts"),
        "ModuleTimeoutSeconds": 60,
        "DBus": {"Enabled": False},
    }
    (etc / "mender.conf").write_text(json.dumps(config))
    mounts = [
        (etc, "/etc/mender"),
        (modules, str(MODULES)),
        (identity, "/usr/share/mender/identity"),
        (inventory, "/usr/share/mender/inventory"),
    ]
    script = " && ".join(f"mount --bind '{src}' '{dst}'" for src, dst in mounts)
    script += (
        f" && exec mender --config /etc/mender/mender.conf --data '{data}'"
        " --no-syslog --log-level debug daemon"
    )
    log = root / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _mender_artifact(
    out: Path, module: str, name: str, files: list[Path], scripts: tuple[Path, ...] = ()
) -> Path:
    args = [a for f in files for a in ("-f", str(f))]
    args += [a for s in scripts for a in ("-s", str(s))]
    subprocess.run(
        ["mender-artifact", "write", "module-image", "-T", module, "-t", DEVICE_TYPE,
         "-n", name, *args, "-o", str(out)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return out


def single_file_artifact(tmp: Path, name: str, dest: Path, scripts: tuple[Path, ...] = ()) -> Path:
    """As Debian's single-file-artifact-gen does it: dest_dir, filename, permissions, file
    (hello.txt saying `installed by <name>`); `scripts`: state scripts it carries."""
    src = tmp / f"{name}-files"
    src.mkdir()
    (src / "dest_dir").write_text(str(dest))
    (src / "filename").write_text("hello.txt")
    (src / "permissions").write_text("0644")
    (src / "hello.txt").write_text(f"installed by {name}\n")
    files = [src / f for f in ("dest_dir", "filename", "permissions", "hello.txt")]
    return _mender_artifact(tmp / f"{name}.mender", "single-file", name, files, scripts)


def failing_artifact(tmp: Path, name: str, scripts: tuple[Path, ...] = ()) -> Path:
    """An artifact for `fail-module`, which refuses it in ArtifactInstall."""
    payload = tmp / "fail.bin"
    payload.write_bytes(b"x" * 8192)
    return _mender_artifact(tmp / f"{name}.mender", "fail-module", name, [payload], scripts)


def gate_script(path: Path, gate: Path) -> Path:
    """A state script (named by `path`) that holds the client in its state until the test
    creates `gate`.open, then removes it; `gate`.reached says the client got there."""
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$(basename "$0")" >> \'{gate}.reached\'\n'
        f"while [ ! -e '{gate}.open' ]; do sleep 0.2; done\n"
        f"rm -f '{gate}.open'\n"
    )
    path.chmod(0o755)
    return path
