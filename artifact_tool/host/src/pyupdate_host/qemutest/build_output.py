"""What a build produced, found and checked before anything boots.

Three ways in, one result (`BuildOutput`):
- our board config (`--board`), with the disk and firmware named on the
  command line;
- Yocto's `IMAGE-MACHINE.qemuboot.conf` (`--qemuboot`): QEMU's machine, CPU
  and memory, the firmware (QB_DEFAULT_BIOS) and the wic disk come from it,
  the board config from meta-pyupdate's `pyupdate-board.json` next to it;
- Buildroot's `output/images/` (`--images`): `disk.img`, and the board
  config buildroot-ext's post-image script wrote to `pyupdate/board.json`.

Every problem is a `UsageError` with one line, raised before a machine starts.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from pyupdate_artifact.errors import ArtifactError
from pyupdate_artifact.model import ArtifactHeader
from pyupdate_artifact.reader import read_artifact
from pyupdate_artifact.verify import load_verifier

from ..image.board import Board, load_board
from ..image.errors import ImageError

# The images plus one scenario's copy of the disk and the media disk (deleted as
# each scenario passes); a fuller host disk would stall a guest mid-write.
HOST_DISK_HEADROOM = 2


class UsageError(Exception):
    """Bad input: one line for the user, exit 2, nothing booted."""


@dataclass(frozen=True, slots=True)
class Artifact:
    path: Path
    name: str
    device_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BuildOutput:
    """board (QEMU and U-Boot settings; uboot.binary is the firmware), disk (release 1),
    update (release 2's signed artifact), broken (an artifact that must roll back, or
    None: made from `update`), signing_key (for what the tool makes), verify_key,
    user and password for the console's login prompt (none with an autologin),
    veto (an artifact that boots but fails its health check, or None: made from
    `update`)."""

    board: Board
    disk: Path
    update: Artifact
    broken: Artifact | None = None
    signing_key: Path | None = None
    verify_key: Path | None = None
    user: str = "root"  # who logs in on the console, when the image asks
    password: str | None = None
    veto: Artifact | None = None

    @property
    def firmware(self) -> Path:
        return Path(self.board.uboot.binary)


def _file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UsageError(f"{what}: {path}: no such file")
    return path.resolve()


def _board(spec: str) -> Board:
    try:
        return load_board(spec)
    except ImageError as err:
        raise UsageError(f"--board: {err}") from None


def _with_firmware(board: Board, firmware: Path | None, near: Path) -> Board:
    """The firmware named, else the board's, else a file of that name next to the board
    config (a build's output copied elsewhere keeps its board's absolute paths)."""
    if firmware is None:
        named = Path(board.uboot.binary)
        firmware = named if named.is_file() else near / named.name
    firmware = _file(firmware, "--firmware (U-Boot)")
    return replace(board, uboot=replace(board.uboot, binary=str(firmware)))


def from_board(spec: str, disk: Path | None, firmware: Path | None) -> tuple[Board, Path]:
    if disk is None:
        raise UsageError("--board needs --disk (the disk image the build made)")
    board = _board(spec)
    near = Path(spec).parent if Path(spec).suffix else Path.cwd()
    return _with_firmware(board, firmware, near), _file(disk, "--disk")


def from_images(images: Path, disk: Path | None, firmware: Path | None) -> tuple[Board, Path]:
    """Buildroot's output/images/ as buildroot-ext's post-image script leaves it."""
    if not images.is_dir():
        raise UsageError(f"--images: {images}: not a directory")
    board_file = _file(images / "pyupdate" / "board.json", "--images: board config")
    board = _board(str(board_file))
    disk = _file(disk or images / "disk.img", "--disk")
    return _with_firmware(board, firmware, images), disk


def _qemuboot(conf: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(conf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error) as err:
        raise UsageError(f"--qemuboot: {conf}: {str(err).splitlines()[0]}") from None
    if not parser.has_section("config_bsp"):
        raise UsageError(f"--qemuboot: {conf}: no [config_bsp] section (not a qemuboot.conf)")
    return dict(parser["config_bsp"])


def _option(value: str, flag: str) -> str:
    """'-machine pc' -> 'pc'; '' when the option is absent."""
    words = shlex.split(value)
    return words[words.index(flag) + 1] if flag in words and words[-1] != flag else ""


def from_qemuboot(conf: Path, disk: Path | None, firmware: Path | None) -> tuple[Board, Path]:
    """Yocto's qemuboot.conf (oe-core's qemuboot.bbclass), as runqemu reads it."""
    conf = _file(conf, "--qemuboot")
    values = _qemuboot(conf)
    deploy = Path(values.get("deploy_dir_image", "."))
    if not deploy.is_absolute():  # oe-core writes it relative to the conf file
        deploy = conf.parent / deploy
    if not deploy.is_dir():
        deploy = conf.parent
    board = _board(str(_file(deploy / "pyupdate-board.json", "--qemuboot: board config")))
    memory = _option(values.get("qb_mem", ""), "-m").rstrip("Mm")
    drive = values.get("qb_drive_type", "/dev/vd")
    qemu = replace(
        board.qemu,
        binary=values.get("qb_system_name") or board.qemu.binary,
        machine=_option(values.get("qb_machine", ""), "-machine") or board.qemu.machine,
        cpu=_option(values.get("qb_cpu", ""), "-cpu") or board.qemu.cpu,
        memory_mib=int(memory) if memory.isdigit() else board.qemu.memory_mib,
        disk_interface="virtio" if drive.startswith("/dev/vd") else "scsi",
    )
    board = replace(board, qemu=qemu)
    if firmware is None and values.get("qb_default_bios"):
        firmware = deploy / values["qb_default_bios"]
    if disk is None:
        fstype = values.get("qb_default_fstype", "wic")
        disk = deploy / f"{values.get('image_link_name', '')}.{fstype}"
    return _with_firmware(board, firmware, deploy), _file(disk, "--disk")


def read_header(path: Path, what: str, verify_key: Path | None) -> Artifact:
    """The artifact's name and device types; with a key, its signature must verify."""
    path = _file(path, what)
    try:
        verifiers = [load_verifier(verify_key)] if verify_key else []
        header: ArtifactHeader = read_artifact(
            path, verify_keys=verifiers, require_signature=verify_key is not None
        )
    except ArtifactError as err:
        raise UsageError(f"{what}: {path.name}: {err}") from None
    return Artifact(path, header.artifact_name, header.device_types)


def check_host(board: Board, disk: Path, work: Path) -> None:
    """QEMU is installed and the work dir has room for two more copies of the disk."""
    if shutil.which(board.qemu.binary) is None:
        raise UsageError(
            f"{board.qemu.binary}: not found (Debian: apt-get install qemu-system-x86 or -arm)"
        )
    for tool in ("mkfs.ext4", "debugfs"):
        if shutil.which(tool) is None:
            raise UsageError(f"{tool}: not found (Debian: apt-get install e2fsprogs)")
    work.mkdir(parents=True, exist_ok=True)
    need = HOST_DISK_HEADROOM * disk.stat().st_size
    free = shutil.disk_usage(work).free
    if free < need:
        raise UsageError(f"{work}: {free >> 20} MiB free, the scenarios need {need >> 20} MiB")


def check_update(board: Board, update: Artifact, current: str | None = None) -> None:
    if board.device_type not in update.device_types:
        raise UsageError(
            f"--update: {update.path.name} is for {', '.join(update.device_types)}, "
            f"the board is {board.device_type}"
        )
    if current is not None and update.name == current:
        raise UsageError(f"--update: {update.path.name} is {current}, what the disk already runs")
