"""`make demo`: the main job, step by step with timings.

Builds (or reuses) the QEMU device images, starts pyupdate-server with its
embedded database, boots a device on release-1 under QEMU with the agent's
daemon, uploads the signed release-2 artifact, deploys it and shows the
device updating, rebooting into the other slot and committing, then the
server's view. It stops everything it started. `make demo-artifact` shows
the artifact tool alone.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "ci" / "qemu"))

import images  # noqa: E402

from pyupdate_host.qemutest import server as fleet  # noqa: E402
from pyupdate_host.qemutest.machine import (  # noqa: E402
    BootStrategy,
    DiskImage,
    QemuDriver,
    ShellDriver,
    State,
    accel,
)

BOARD = "qemu-x86_64"
_T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {text}", flush=True)


def make_keys(work: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = work / "signing-key.pem", work / "verify-key.pem"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                    serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return priv, pub


def shell(strategy: BootStrategy, cmd: str) -> str:
    return strategy.shell.check(cmd, timeout=300).strip()


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="pyupdate-demo-"))
    say(f"pyupdate demo on {BOARD} (QEMU, accel={accel()}); work dir {work}")
    priv, pub = make_keys(work)
    say("building the device images: Debian rootfs + this repo's agent, A/B disk, signed artifacts")
    built = images.build_device_images(BOARD, work, priv, pub)
    say(f"  disk {built.disk.name} ({built.disk.stat().st_size >> 20} MiB), artifacts: "
        + ", ".join(f"{p.name} ({p.stat().st_size >> 20} MiB)" for p in built.updates.values()))  # fmt: skip

    server = fleet.Server(work / "server-data", work / "server.log")
    strategy = None
    try:
        say(f"pyupdate-server serving on {server.url} (SQLite in {server.data_dir})")
        say(f"  web UI while the demo runs: {server.url}/ui/ ({fleet.ADMIN[0]} / {fleet.ADMIN[1]})")
        mgmt = fleet.Management(server.url)
        forwards = {images.SERVER_GUEST_PORT: server.port}
        power = QemuDriver(
            built.board, DiskImage(built.disk), work / "console.log", forwards=forwards
        )
        strategy = BootStrategy(power, ShellDriver(power))
        say("powering on the device: U-Boot -> boot.scr -> Linux on slot A")
        strategy.transition(State.SHELL)
        say(f"  device up: root={shell(strategy, 'findmnt -n -o SOURCE /')}, "
            f"artifact={shell(strategy, 'pyupdate show-artifact')}")  # fmt: skip
        shell(strategy, "touch /data/pyupdate-managed && systemctl start pyupdate")
        say("  pyupdate daemon started; waiting for its authentication request")
        pending = fleet.wait_for("the device", lambda: fleet.pending_device(mgmt), 180)
        say(
            f"server: device {pending['id']} pending, identity {pending['identity_data']}; accepting"
        )
        mgmt.accept(pending)
        device_id = pending["id"]
        fleet.wait_for("inventory", lambda: mgmt.inventory(device_id).get("artifact_name"), 180)
        say(f"server: inventory received: {mgmt.inventory(device_id)}")
        mgmt.upload(built.updates["release-2"])
        say("server: release-2.mender uploaded (validated and signature-checked on upload)")
        deployment = mgmt.deploy("demo: release-2", "release-2", [device_id])
        say(f"server: deployment {deployment} created")
        power.expect("AB: trial boot of part 3", timeout=900)
        say("device: artifact streamed into slot B, env switched, rebooted; U-Boot trial-boots B")
        strategy.await_shell()
        say(f"device: trial boot of slot B: root={shell(strategy, 'findmnt -n -o SOURCE /')}")
        status = fleet.wait_for("the deployment", lambda: fleet.final_status(mgmt, deployment, device_id),
                                600, every=2)  # fmt: skip
        say(f"server: device status {status!r}")
        # the agent commits right after the server took `success`; the inventory it
        # sends next names the committed artifact
        fleet.wait_for(
            "the new artifact in inventory",
            lambda: mgmt.inventory(device_id).get("artifact_name") == "release-2",
            120,
        )
        env = shell(strategy, "fw_printenv mender_boot_part upgrade_available bootcount")
        say(
            f"device: committed: {' '.join(env.split())}; artifact={shell(strategy, 'pyupdate show-artifact')}"
        )
        print()
        say("the server's view")
        for dev in mgmt.devices():
            inv = mgmt.inventory(dev["id"])
            print(f"    device {dev['id']}  {dev['status']}  artifact_name={inv.get('artifact_name')}"
                  f"  device_type={inv.get('device_type')}")  # fmt: skip
        dep = mgmt.deployment(deployment)
        counts = {k: v for k, v in (dep.get("statistics") or {}).items() if v}
        print(f"    deployment {dep['id']}  {dep['name']!r}  artifact={dep['artifact_name']}"
              f"  status={dep['status']}  devices: {counts}")  # fmt: skip
        print()
        say("demo done" if status == "success" else "demo FAILED")
        return 0 if status == "success" else 1
    finally:
        if strategy is not None:
            strategy.power.off()
        server.stop()
        freed = keep_only_logs(work)
        say(f"stopped QEMU and the server; removed images and artifacts ({freed >> 20} MiB); "
            f"console log and server log are in {work}")  # fmt: skip


def keep_only_logs(work: Path) -> int:
    """Delete all but the logs: a demo left behind 1.1 GiB of images per run otherwise."""
    freed = 0
    for entry in work.iterdir():
        if entry.suffix == ".log":
            continue
        files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
        freed += sum(f.stat().st_blocks * 512 for f in files)
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return freed


if __name__ == "__main__":
    sys.exit(main())
