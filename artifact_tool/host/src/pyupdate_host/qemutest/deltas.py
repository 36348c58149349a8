"""What the delta scenario makes on the host: release 1 as an artifact, and the deltas.

Release 1's artifact is the disk's own slot A (the image the device boots), so
the tool needs no input beyond the disk and the update. The deltas are made by
`pyupdate-artifact delta OLD NEW -o OUT -k KEY`, the command a build's CI runs,
both at once (each holds a core; nothing has booted yet).
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pyupdate_artifact import compression
from pyupdate_artifact.errors import ArtifactError
from pyupdate_artifact.reader import read_artifact

from ..defaults import rootfs_payload
from ..sign import load_signer
from ..writer import ArtifactSpec, write_artifact
from .build_output import Artifact, BuildOutput, UsageError

CHECKSUM = "rootfs-image.checksum"
SECTOR = 512
CHUNK = 1 << 20
# where the image's name is, in the order the agent reads them (ArtifactInfoFiles)
ARTIFACT_INFO = ("/etc/pyupdate/artifact_info", "/etc/mender/artifact_info")


@dataclass(frozen=True, slots=True)
class Deltas:
    """base: release 1 in full (slot A of the disk), to_update: base -> the update,
    to_broken: the update -> the broken release; checksums: artifact name -> sha256 of
    its root file system image."""

    base: Artifact
    to_update: Artifact
    to_broken: Artifact
    checksums: dict[str, str]

    @property
    def files(self) -> list[Path]:
        return [self.base.path, self.to_update.path, self.to_broken.path]


def partition(disk: Path, number: int) -> tuple[int, int]:
    """(offset, size) in bytes of partition `number` of an MBR (primary) or GPT disk."""
    with disk.open("rb") as f:
        mbr = f.read(SECTOR)
        if mbr[510:512] != b"\x55\xaa":
            raise UsageError(f"--disk: {disk.name}: no partition table")
        kind, start, count = struct.unpack_from("<4xB3xII", mbr, 446)
        if kind != 0xEE:
            if not 1 <= number <= 4:
                raise UsageError(f"--disk: {disk.name}: partition {number} is not primary")
            kind, start, count = struct.unpack_from("<4xB3xII", mbr, 446 + 16 * (number - 1))
            if kind == 0 or count == 0:
                raise UsageError(f"--disk: {disk.name}: no partition {number}")
            return start * SECTOR, count * SECTOR
        f.seek(SECTOR)
        header = f.read(92)
        table, entries, entry_size = struct.unpack_from("<QII", header, 72)
        if header[:8] != b"EFI PART" or number > entries:
            raise UsageError(f"--disk: {disk.name}: no GPT partition {number}")
        f.seek(table * SECTOR + (number - 1) * entry_size)
        first, last = struct.unpack_from("<QQ", f.read(entry_size), 32)
        if first == 0:
            raise UsageError(f"--disk: {disk.name}: no partition {number}")
        return first * SECTOR, (last - first + 1) * SECTOR


def copy_slot(disk: Path, number: int, out: Path) -> str:
    """Partition `number` of `disk` into `out`; its sha256 (what the device's slot must
    hash to for a delta from it to apply)."""
    offset, size = partition(disk, number)
    digest = hashlib.sha256()
    with disk.open("rb") as src, out.open("wb") as dst:
        src.seek(offset)
        left = size
        while left:
            block = src.read(min(CHUNK, left))
            if not block:
                raise UsageError(f"--disk: {disk.name}: ends inside partition {number}")
            digest.update(block)
            dst.write(block)
            left -= len(block)
    return digest.hexdigest()


def image_name(slot: Path) -> str | None:
    """`artifact_name` from the slot's artifact_info (debugfs: no mount), if it has one."""
    for path in ARTIFACT_INFO:
        done = subprocess.run(["debugfs", "-R", f"cat {path}", str(slot)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        for line in done.stdout.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "artifact_name" and value.strip():
                return value.strip()
    return None


def base_artifact(output: BuildOutput, work: Path) -> tuple[Artifact, str]:
    """The disk's slot A as a signed rootfs-image artifact named as the image says
    (uncompressed: it stays on the host and on the media disk); and its checksum."""
    slot = work / "base-rootfs.img"
    checksum = copy_slot(output.disk, 2, slot)
    name = image_name(slot) or f"{output.update.name}-base"
    out = work / f"{name}.mender"
    payload = rootfs_payload(slot, name)
    spec = ArtifactSpec(name, (output.board.device_type,), payload, compression.by_id("none"))
    try:
        signer = load_signer(output.signing_key) if output.signing_key else None
        write_artifact(out, spec, signer)
    except ArtifactError as err:
        raise UsageError(f"--signing-key: {err}") from None
    finally:
        slot.unlink(missing_ok=True)
    return Artifact(out, name, (output.board.device_type,)), checksum


def _delta_command(old: Artifact, new: Artifact, out: Path, key: Path | None) -> list[str]:
    argv = [sys.executable, "-m", "pyupdate_host.cli.main", "delta", str(old.path),
            str(new.path), "-o", str(out)]  # fmt: skip
    return argv + (["-k", str(key)] if key else [])


def result_checksum(delta: Artifact) -> str:
    """The sha256 of the image a delta makes (its signed provides)."""
    header = read_artifact(delta.path)
    return str(header.type_provides.get(CHECKSUM, ""))


def make_deltas(output: BuildOutput, broken: Artifact, work: Path) -> Deltas:
    """Release 1 from the disk, and the deltas release 1 -> update -> broken release."""
    if output.verify_key is not None and output.signing_key is None:
        raise UsageError("delta: the device checks signatures: give --signing-key to sign the "
                         "deltas and release 1's artifact")  # fmt: skip
    base, base_sum = base_artifact(output, work)
    pairs = {"to_update": (base, output.update), "to_broken": (output.update, broken)}
    made = {k: work / f"{new.name}-from-{old.name}.delta.mender" for k, (old, new) in pairs.items()}
    runs = {
        k: subprocess.Popen(_delta_command(old, new, made[k], output.signing_key),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k, (old, new) in pairs.items()
    }  # fmt: skip
    errors = {k: run.communicate()[1] for k, run in runs.items()}
    for k, run in runs.items():
        if run.returncode != 0:
            # exit 3: not smaller than the full artifact, which a test pair never should be
            err = errors[k].strip()
            line = err.splitlines()[-1] if err else f"exit {run.returncode}"
            old, new = pairs[k]
            raise UsageError(f"delta: pyupdate-artifact delta {old.name} {new.name}: {line}")
    deltas = {k: Artifact(made[k], pairs[k][1].name, pairs[k][1].device_types) for k in pairs}
    checksums = {base.name: base_sum} | {d.name: result_checksum(d) for d in deltas.values()}
    return Deltas(base, deltas["to_update"], deltas["to_broken"], checksums)
