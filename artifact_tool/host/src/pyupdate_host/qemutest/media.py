"""What the tool makes on the host for the scenarios: the artifacts' disk and a broken release.

The artifacts reach the device on a second, read-only disk (a USB stick on a
real board), made with mkfs.ext4 -d: no loop devices, no root. The broken
release is the update's own root file system with every init the kernel
would try removed (debugfs, again no root), so it fails exactly where a bad
release fails: after U-Boot has switched slots, before anything could commit.
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
INITS = (
    "/sbin/init",
    "/etc/init",
    "/bin/init",
    "/bin/sh",
    "/lib/systemd/systemd",
    "/usr/lib/systemd/systemd",
    "/bin/busybox",
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


def broken_artifact(update: Artifact, key: Path | None, work: Path) -> Artifact:
    """`update`'s root file system without an init, as `<name>-broken`, signed with `key`."""
    slot = work / "broken-rootfs.img"
    try:
        header = read_artifact(update.path, sink=_FileSink(slot))
    except ArtifactError as err:
        raise UsageError(f"--update: {err}") from None
    if [p.type for p in header.payloads] != ["rootfs-image"] or not slot.exists():
        raise UsageError(
            f"--update: {update.path.name}: not a rootfs-image artifact; give --broken"
        )
    for path in INITS:
        subprocess.run(["debugfs", "-w", "-R", f"rm {path}", str(slot)], capture_output=True)
    probe = subprocess.run(
        ["debugfs", "-R", "stat /sbin/init", str(slot)], capture_output=True, text=True
    )
    if "Inode:" in probe.stdout:
        raise UsageError(
            f"--update: {update.path.name}: could not remove /sbin/init (not ext2/3/4?)"
        )
    name = f"{update.name}-broken"
    out = work / f"{name}.mender"
    try:
        write_rootfs_artifact(slot, out, name, update.device_types[0], key)
    except (ImageError, ArtifactError) as err:
        raise UsageError(f"--signing-key: {err}") from None
    finally:
        slot.unlink(missing_ok=True)
    return Artifact(out, name, update.device_types)
