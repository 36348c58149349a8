"""`pyupdate-image build`: every step from a rootfs and a board config to a bootable disk."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from . import artifact, bootpart, bootscript, disk, envimage, manifest, slot, tools
from .board import BOOT_PART, DATA_PART, SLOT_A_PART, SLOT_B_PART, Board
from .errors import EnvConfigError, InputError
from .steps import Step, StepTiming, run_steps

BASE_TOOLS = ("mkimage", "mkenvimage", "fw_printenv", "mkfs.ext4", "debugfs", "e2fsck")
BASE_TOOLS += ("resize2fs", "mkfs.vfat", "mcopy", "sfdisk", "dd", "tar")


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """Args: board; rootfs (dir, tarball or ext4); name (artifact name of the image);
    out_dir; key (PEM private key to sign the artifacts, optional); data_dir
    (initial data partition content, optional); rootfs_b (slot B content,
    default: the same as A); artifacts (write the .mender files)."""

    board: Board
    rootfs: Path
    name: str
    out_dir: Path
    key: Path | None = None
    data_dir: Path | None = None
    rootfs_b: Path | None = None
    artifacts: bool = True

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise InputError(f"artifact name {self.name!r}: must be non-empty, without spaces")


def check_inputs(spec: BuildSpec) -> None:
    """Everything that can be checked before the first byte is written."""
    for tool in BASE_TOOLS:
        tools.require(tool)
    if not Path(spec.board.uboot.binary).is_file():
        raise InputError(
            f"{spec.board.uboot.binary}: U-Boot binary not found "
            f"(uboot.binary in {spec.board.source})"
        )
    slot.rootfs_kind(spec.rootfs)
    if spec.rootfs_b is not None:
        slot.rootfs_kind(spec.rootfs_b)
    if spec.data_dir is not None and not spec.data_dir.is_dir():
        raise InputError(f"{spec.data_dir}: data directory not found")
    if spec.key is not None and not spec.key.is_file():
        raise InputError(f"{spec.key}: signing key not found")


# Where the agent's data dir (/var/lib/pyupdate -> /data/pyupdate) is on the data
# partition, and the bootstrap artifact in it (the agent's bootstrap.py)
AGENT_DATA = "pyupdate"
BOOTSTRAP_NAME = "bootstrap.mender"


def products(spec: BuildSpec) -> list[str]:
    names = ["boot.cmd", "boot.scr", "uboot.env", "uboot-redund.env", "fw_env.config"]
    names += ["rootfs.ext4", f"{spec.name}-bootstrap.mender", "disk.img"]
    if spec.artifacts:
        names += [f"{spec.name}.mender"]
    return [*names, "manifest.sha256"]


def build(spec: BuildSpec) -> tuple[list[Path], list[StepTiming]]:
    check_inputs(spec)
    board = spec.board
    env_files = list(board.env.files)

    def boot_script(d: Path) -> None:
        (d / "boot.cmd").write_text(bootscript.boot_cmd(board))
        bootscript.compile_script(board, d / "boot.cmd", d / "boot.scr")

    def env(d: Path) -> None:
        (d / "env.txt").write_text(bootscript.env_defaults(board))
        envimage.write_env_images(board, d / "env.txt", d)
        envimage.write_fw_env_config(board, d / "fw_env.config")
        _verify_env(board, d)

    def rootfs_a(d: Path) -> None:
        slot.make_slot_image(board, spec.rootfs, d / "rootfs.ext4", spec.name, "rootfs")

    def rootfs_b(d: Path) -> None:
        if spec.rootfs_b is None:
            tools.run(["cp", "--sparse=always", d / "rootfs.ext4", d / "rootfs-b.ext4"])
        else:
            slot.make_slot_image(board, spec.rootfs_b, d / "rootfs-b.ext4", spec.name, "rootfs")

    def boot_partition(d: Path) -> None:
        files = [d / "boot.scr", *(d / f for f in env_files)]
        bootpart.make_boot_partition(board, d / "boot.vfat", files)

    def bootstrap(d: Path) -> None:
        artifact.write_bootstrap_artifact(
            d / f"{spec.name}-bootstrap.mender",
            spec.name,
            board.device_type,
            spec.key,
            image=d / "rootfs.ext4",
        )

    def data_partition(d: Path) -> None:
        # the given content, and the bootstrap artifact in the agent's data dir: the
        # device's first start learns its image's checksum (deltas from the first update)
        content = d / "data-content"
        shutil.rmtree(content, ignore_errors=True)
        if spec.data_dir is not None:
            shutil.copytree(spec.data_dir, content, symlinks=True)
        agent = content / AGENT_DATA
        agent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(d / f"{spec.name}-bootstrap.mender", agent / BOOTSTRAP_NAME)
        try:
            bootpart.make_data_partition(board, d / "data.ext4", content)
        finally:
            shutil.rmtree(content, ignore_errors=True)

    def whole_disk(d: Path) -> None:
        images = {
            BOOT_PART: d / "boot.vfat",
            SLOT_A_PART: d / "rootfs.ext4",
            SLOT_B_PART: d / "rootfs-b.ext4",
            DATA_PART: d / "data.ext4",
        }
        disk.assemble(board, d / "disk.img", images)

    def artifacts(d: Path) -> None:
        artifact.write_rootfs_artifact(
            d / "rootfs.ext4", d / f"{spec.name}.mender", spec.name, board.device_type, spec.key
        )

    def sha256(d: Path) -> None:
        names = [n for n in products(spec) if n != "manifest.sha256"]
        manifest.write_manifest([d / n for n in names], d / "manifest.sha256")

    steps = [
        Step("boot-script", boot_script),
        Step("env", env),
        Step("rootfs-a", rootfs_a),
        Step("rootfs-b", rootfs_b),
        Step("boot-partition", boot_partition),
        Step("bootstrap", bootstrap),
        Step("data-partition", data_partition),
        Step("disk", whole_disk),
    ]
    if spec.artifacts:
        steps.append(Step("artifacts", artifacts))
    steps.append(Step("manifest", sha256))
    return run_steps(steps, spec.out_dir, products(spec))


def _verify_env(board: Board, d: Path) -> None:
    """Read the fresh env images back with the real fw_printenv through a local config."""
    for name in board.env.files:
        envimage.check_env_image(board, d / name)
    cfg = d / "fw_env.local.config"
    cfg.write_text("".join(f"{d / f} 0x0 {board.env.size:#x}\n" for f in board.env.files))
    text = tools.run(["fw_printenv", "-c", cfg]).decode()
    cfg.unlink()
    if "mender_boot_part=" not in text:
        raise EnvConfigError(f"{d / board.env.files[0]}: fw_printenv cannot read the new env")
