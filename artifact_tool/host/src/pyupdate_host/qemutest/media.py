"""What the tool makes on the host for the scenarios: the artifacts' disk, a broken release
and a release whose health check fails.

The artifacts reach the device on a second, read-only disk (a USB stick on a
real board), made with mkfs.ext4 -d: no loop devices, no root. The broken
release is the update's own root file system with every init the kernel
would try removed (debugfs, again no root), so it fails exactly where a bad
release fails: after U-Boot has switched slots, before anything could commit.
The veto release is the update's root file system as it is, with a state
script that fails `ArtifactCommit_Enter`: it boots, and its health check says no.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pyupdate_artifact.errors import ArtifactError
from pyupdate_artifact.model import Payload
from pyupdate_artifact.reader import read_artifact

from ..image.artifact import write_rootfs_artifact
from ..image.errors import ImageError
from .build_output import Artifact, UsageError
from .target import MEDIA_LABEL

# The kernel's fallbacks (init/main.c) and the usual init= targets: with all gone
# and no initramfs to rescue it, the kernel panics "No working init found".
# The health check the veto release fails (veto_artifact); the device's log must show it.
VETO_SCRIPT = "ArtifactCommit_Enter_50_pyupdate_qemu_test_veto"
VETO_MESSAGE = "pyupdate-qemu-test: health check failed on purpose"

INITS = (
    "/sbin/init",
    "/etc/init",
    "/bin/init",
    "/bin/sh",
    "/lib/systemd/systemd",
    "/usr/lib/systemd/systemd",
    "/bin/busybox",
    # merged /usr (Debian 12 and later): /sbin and /bin are links, which debugfs's rm
    # does not follow, and the files are here
    "/usr/sbin/init",
    "/usr/bin/init",
    "/usr/bin/sh",
    "/usr/bin/busybox",
)


def media_disk(files: list[Path], out: Path) -> Path:
    """An ext4 disk labelled MEDIA_LABEL holding `files` (hard links where possible)."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        for f in files:
            if f.stat().st_dev == out.parent.stat().st_dev:
                os.link(f, Path(tmp) / f.name)
            else:
                shutil.copy2(f, tmp)
        size = sum(f.stat().st_size for f in files) + (32 << 20)
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-L", MEDIA_LABEL, "-d", tmp, str(out), f"{size >> 10}k"],
            check=True,
            capture_output=True,
        )
    return out


class _FileSink:
    """Writes the one rootfs-image payload file to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open_file(self, payload: Payload, name: str, size: int) -> _FileWriter:
        return _FileWriter(self.path)


class _FileWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def finish(self) -> None:
        self.file.close()

    def abort(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


def _rootfs_of(update: Artifact, slot: Path, flag: str) -> None:
    """The update's one rootfs-image payload, written to `slot`; else a UsageError naming
    `flag`, the option that gives the artifact instead."""
    try:
        header = read_artifact(update.path, sink=_FileSink(slot))
    except ArtifactError as err:
        raise UsageError(f"--update: {err}") from None
    if [p.type for p in header.payloads] != ["rootfs-image"] or not slot.exists():
        slot.unlink(missing_ok=True)
        raise UsageError(f"--update: {update.path.name}: not a rootfs-image artifact; give {flag}")


def _rewrite(
    update: Artifact,
    slot: Path,
    name: str,
    key: Path | None,
    work: Path,
    scripts: tuple[Path, ...] = (),
) -> Artifact:
    out = work / f"{name}.mender"
    try:
        write_rootfs_artifact(slot, out, name, update.device_types[0], key, scripts)
    except (ImageError, ArtifactError) as err:
        raise UsageError(f"--signing-key: {err}") from None
    finally:
        slot.unlink(missing_ok=True)
    return Artifact(out, name, update.device_types)


def broken_artifact(update: Artifact, key: Path | None, work: Path) -> Artifact:
    """`update`'s root file system without an init, as `<name>-broken`, signed with `key`."""
    slot = work / "broken-rootfs.img"
    _rootfs_of(update, slot, "--broken")
    for path in INITS:
        subprocess.run(["debugfs", "-w", "-R", f"rm {path}", str(slot)], capture_output=True)
    probe = subprocess.run(
        ["debugfs", "-R", "stat /sbin/init", str(slot)], capture_output=True, text=True
    )
    if "Inode:" in probe.stdout:
        slot.unlink(missing_ok=True)
        raise UsageError(
            f"--update: {update.path.name}: could not remove /sbin/init (not ext2/3/4?)"
        )
    return _rewrite(update, slot, f"{update.name}-broken", key, work)


def veto_artifact(update: Artifact, key: Path | None, work: Path) -> Artifact:
    """`update`'s root file system unchanged, as `<name>-veto`, signed with `key`, carrying
    one state script that fails the new system's health check: `ArtifactCommit_Enter`
    exits 1 on the trial boot, so the agent rolls back after the new system booted."""
    slot = work / "veto-rootfs.img"
    _rootfs_of(update, slot, "--veto")
    script = work / VETO_SCRIPT
    script.write_text(f'#!/bin/sh\necho "{VETO_MESSAGE}" >&2\nexit 1\n')
    script.chmod(0o755)
    try:
        return _rewrite(update, slot, f"{update.name}-veto", key, work, (script,))
    finally:
        script.unlink(missing_ok=True)
