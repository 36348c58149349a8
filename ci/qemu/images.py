"""Compose the QEMU test images: the cached Debian rootfs + kernel + initramfs + this repo's agent.

The rootfs tar, kernel and initramfs come from inputs.py (cached). What changes
with every commit, the agent and the image layout, is added here on a fresh
copy and turned into slots and a disk by `pyupdate-image` (its library API).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import inputs

from pyupdate_host.image import artifact, slot
from pyupdate_host.image.board import Board, load_board
from pyupdate_host.image.build import BuildSpec, build

# The guest reaches the host's services at GUEST_HOST_IP (the QEMU guestfwd, machine.py).
from pyupdate_host.qemutest.machine import GUEST_HOST_IP
from pyupdate_host.qemutest.scenarios import SERVER_GUEST_PORT

REPO = Path(__file__).resolve().parents[2]
PYTHON_SITE = "usr/local/lib/python3.11/dist-packages"


@dataclass(frozen=True, slots=True)
class DeviceImages:
    """Args: board; disk (slot A and B: `base_name`); rootfs (its slot image);
    updates: artifact name -> signed .mender; verify_key: public key on the device."""

    board: Board
    disk: Path
    rootfs: Path
    updates: dict[str, Path]
    verify_key: Path
    key: Path


def agent_wheels(out: Path) -> list[Path]:
    """The reader's and the agent's wheels, built from clean copies of their sources:
    pip builds in place, and a build/ left in the checkout would ship stale modules."""
    out.mkdir(parents=True, exist_ok=True)
    junk = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    with tempfile.TemporaryDirectory() as tmp:
        sources = []
        for rel in ("artifact_tool/reader", "agent"):
            sources.append(Path(tmp) / rel)
            shutil.copytree(REPO / rel, sources[-1], ignore=junk)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "-w",
                str(out),
                *map(str, sources),
            ],
            check=True,
            capture_output=True,
        )
    return sorted(out.glob("*.whl"))


def pip_target(site: Path, wheels: list[Path]) -> None:
    """The wheels unpacked into a rootfs's site dir (no deps, no .pyc: not this Python's)."""
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile"),
            *("--target", str(site), *map(str, wheels)),
        ],
        check=True,
        capture_output=True,
    )


def install_agent(tree: Path, wheels: list[Path]) -> None:
    """pip --target into Debian's dist-packages; console scripts rewritten for /usr/bin/python3."""
    target = tree / PYTHON_SITE
    pip_target(target, wheels)
    bin_dir = tree / "usr/local/bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "pyupdate").write_text(
        "#!/usr/bin/python3\nimport sys\nfrom pyupdate_agent.cli import main\nsys.exit(main())\n"
    )
    (bin_dir / "pyupdate").chmod(0o755)
    shutil.rmtree(target / "bin", ignore_errors=True)


def compile_agent(tree: Path) -> None:
    """Byte-compile the agent for the tiny rootfs, whose python3.11 matches this one's .pyc
    format: the systemd image has the time to compile at first run, TCG arm64 less so."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-s",
            str(tree),
            "-p",
            "/",
            str(tree / PYTHON_SITE),
        ],
        check=True,
        capture_output=True,
    )


def install_daemon(tree: Path) -> None:
    """The agent's systemd unit, an identity and an inventory script (managed mode).

    The unit only starts once /data/pyupdate-managed exists: the standalone
    scenarios keep the daemon off, the managed one switches it on, and the flag
    lives on the data partition, so it holds on both slots.
    """
    unit = (REPO / "agent/systemd/pyupdate.service").read_text()
    units = tree / "etc/systemd/system"
    (units / "pyupdate.service").write_text(
        unit.replace("/usr/bin/pyupdate", "/usr/local/bin/pyupdate")
    )
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "pyupdate.service").unlink(missing_ok=True)
    (wants / "pyupdate.service").symlink_to("/etc/systemd/system/pyupdate.service")
    dropin = units / "pyupdate.service.d"
    dropin.mkdir(exist_ok=True)
    # conditions are checked once the unit's RequiresMountsFor (/data included) are met
    (dropin / "qemu-test.conf").write_text("[Unit]\nConditionPathExists=/data/pyupdate-managed\n")
    # the agent's own identity and inventory scripts, as the Yocto and Buildroot packages install them
    for kind, name in (
        ("identity", "pyupdate-device-identity"),
        ("inventory", "pyupdate-inventory-os"),
    ):
        target = tree / "usr/share/pyupdate" / kind / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / "agent/support" / kind / name, target)


def compose_tree(
    arch: str, board: Board, tree: Path, wheels: list[Path], verify_key: Path, *, broken: bool
) -> None:
    subprocess.run(
        ["tar", "-x", "--numeric-owner", "-f", str(inputs.rootfs_tar(arch)), "-C", str(tree)],
        check=True,
    )
    shutil.copy2(inputs.kernel_image(arch), tree / board.kernel.image.lstrip("/"))
    shutil.copy2(inputs.initramfs(arch), tree / board.kernel.initrd.lstrip("/"))
    install_agent(tree, wheels)
    if not inputs.has_systemd(arch):
        compile_agent(tree)
    etc = tree / "etc/pyupdate"
    etc.mkdir(parents=True, exist_ok=True)
    shutil.copy2(verify_key, etc / "artifact-verify-key.pem")
    (etc / "device_type").write_text(f"device_type={board.device_type}\n")
    config = {
        "RootfsPartA": board.linux_partition(2),
        "RootfsPartB": board.linux_partition(3),
        "ArtifactVerifyKey": "/etc/pyupdate/artifact-verify-key.pem",
        "DeviceTypeFile": "/etc/pyupdate/device_type",
        "Bootloader": "uboot",
        # managed mode: the host's pyupdate-server through the QEMU guestfwd (qemutest/machine.py)
        "ServerURL": f"http://{GUEST_HOST_IP}:{SERVER_GUEST_PORT}",
        "UpdatePollIntervalSeconds": 5,
        "InventoryPollIntervalSeconds": 30,
        "RetryPollIntervalSeconds": 5,
        # the tiny rootfs (no systemd, inputs.TINY_ARCHES) has its own `reboot` (reboot-tiny.sh)
        "RebootCommand": "systemctl reboot" if inputs.has_systemd(arch) else "reboot",
        "DeviceKeyType": "ecdsa",
    }
    (etc / "pyupdate.conf").write_text(json.dumps(config, indent=2) + "\n")
    if inputs.has_systemd(arch):
        install_daemon(tree)
    if broken:
        # The initramfs finds no init, exits, the kernel panics: a rootfs that never boots.
        for path in ("sbin/init", "lib/systemd/systemd"):
            (tree / path).unlink(missing_ok=True)


def build_device_images(board_name: str, work: Path, key: Path, verify_key: Path) -> DeviceImages:
    """release-1 on the disk (both slots); release-2 and release-broken as artifacts."""
    board = load_board(board_name)
    arch = inputs.BOARD_ARCH[board.name]
    wheels = agent_wheels(work / "wheels")
    updates = {}
    for name, broken in (("release-1", False), ("release-2", False), ("release-broken", True)):
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            tree = Path(tmp) / "tree"
            tree.mkdir()
            compose_tree(arch, board, tree, wheels, verify_key, broken=broken)
            if name == "release-1":
                data = Path(tmp) / "data"
                (data / "pyupdate").mkdir(parents=True)
                (data / "keep-me").write_text("data partition survives updates\n")
                spec = BuildSpec(board, tree, name, work / "disk", key=key, data_dir=data)
                build(spec)
                updates[name] = work / "disk" / f"{name}.mender"
                continue
            image = Path(tmp) / "rootfs.ext4"
            slot.make_slot_image(board, tree, image, name, "rootfs")
            updates[name] = work / f"{name}.mender"
            artifact.write_rootfs_artifact(image, updates[name], name, board.device_type, key)
    return DeviceImages(
        board=board,
        disk=work / "disk" / "disk.img",
        rootfs=work / "disk" / "rootfs.ext4",
        updates=updates,
        verify_key=verify_key,
        key=key,
    )


def read_only_board(board: Board) -> Board:
    """`board` with `ro rootflags=noload` instead of `rw` in its kernel bootargs: the
    initramfs (init.sh) mounts the root read-only without loading its journal, and nothing
    on the image remounts it (no root line in fstab). Loading the journal, even read-only,
    changes its superblock in the page cache, where the agent reads a delta's base."""
    words = [w for w in board.kernel.bootargs.split() if w not in ("rw", "ro")]
    bootargs = " ".join(["ro", "rootflags=noload", *words])
    return replace(board, kernel=replace(board.kernel, bootargs=bootargs))


def build_read_only_disk(built: DeviceImages, out: Path) -> Path:
    """release-1's disk again, its boot script mounting the root read-only: the delta
    scenarios' device. A delta applies only to a slot bit-identical to the image it was
    made from, and an ext4 mounted rw rewrites its superblock at every mount. The slots
    are release-1's own (its rootfs.ext4); release-2 and the others fit unchanged, since
    the bootargs live on the boot partition, not in the slots."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        data = Path(tmp) / "data"
        (data / "pyupdate").mkdir(parents=True)
        (data / "keep-me").write_text("data partition survives updates\n")
        board = read_only_board(built.board)
        build(BuildSpec(board, built.rootfs, "release-1", out, data_dir=data, artifacts=False))
    (out / "rootfs.ext4").unlink()  # the disk holds it; the tool reads slot A from there
    return out / "disk.img"
