"""Rootfs slot images: ext4 from a directory, a tarball or an ext4 image, no root, no loop.

After the filesystem is made, the board's device files (fw_env.config, the
artifact name, fstab lines for the env and data partitions) are written into
it with debugfs, so the input rootfs is never modified.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from . import tools
from .board import Board
from .bootscript import fw_env_config
from .errors import FitError, InputError, ToolError

MIB = 1024 * 1024
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.zst", ".tar.bz2")


def rootfs_kind(src: Path) -> str:
    if src.is_dir():
        return "dir"
    if not src.is_file():
        raise InputError(f"{src}: rootfs not found (a directory, tarball or ext4 image)")
    with src.open("rb") as f:
        f.seek(1080)
        if f.read(2) == b"\x53\xef":
            return "ext4"
    # is_tarfile() alone accepts any file that starts with a zero block (an ext4
    # image does): a tarball must have a tar suffix or at least one member.
    if src.name.endswith(TAR_SUFFIXES) or _has_tar_member(src):
        return "tar"
    raise InputError(f"{src}: rootfs is neither a directory, a tarball nor an ext4 image")


def _has_tar_member(src: Path) -> bool:
    try:
        with tarfile.open(src) as tar:
            return tar.next() is not None
    except (tarfile.TarError, OSError):
        return False


def make_slot_image(board: Board, src: Path, out: Path, artifact_name: str, label: str) -> None:
    """Write an ext4 image of exactly the slot size (sparse) with the device files added."""
    size = board.partitions.rootfs_mib * MIB
    kind = rootfs_kind(src)
    if kind == "ext4":
        _from_ext4(src, out, size, board)
    elif kind == "dir":
        _check_apparent_size(src, size, board)
        _mkfs(out, size, label, src, board)
    else:
        _from_tar(src, out, size, label, board)
    add_device_files(board, out, artifact_name)


def device_files(board: Board, artifact_name: str, fstab: str) -> dict[str, str]:
    """Files the image tool owns inside every slot (path -> content)."""
    lines = fstab if fstab.endswith("\n") or not fstab else fstab + "\n"
    wanted = {
        board.env.mount_point: f"{board.linux_partition(1)} {board.env.mount_point} vfat "
        "defaults,nofail 0 0",
        board.data_mount_point: f"LABEL={board.data_label} {board.data_mount_point} ext4 "
        "defaults,nofail 0 2",
    }
    present = {ln.split()[1] for ln in lines.splitlines() if len(ln.split()) > 1}
    for mount, line in wanted.items():
        if mount not in present:
            lines += line + "\n"
    return {
        "/etc/fw_env.config": fw_env_config(board),
        "/etc/pyupdate/artifact_info": f"artifact_name={artifact_name}\n",
        "/etc/fstab": lines,
    }


def add_device_files(board: Board, image: Path, artifact_name: str) -> None:
    fstab = _debugfs(image, "cat /etc/fstab", write=False)
    files = device_files(board, artifact_name, fstab if "File not found" not in fstab else "")
    with tempfile.TemporaryDirectory() as tmp:
        cmds = []
        for dirname in sorted({os.path.dirname(p) for p in files}):
            parts = dirname.strip("/").split("/")
            cmds += [f"mkdir /{'/'.join(parts[: i + 1])}" for i in range(len(parts))]
        for i, (path, content) in enumerate(files.items()):
            local = Path(tmp) / f"f{i}"
            local.write_text(content)
            local.chmod(0o644)
            cmds += [f"rm {path}", f"write {local} {path}"]
        script = Path(tmp) / "cmds"
        script.write_text("\n".join(cmds) + "\n")
        # mkdir/rm of something that exists/does not exist only warns; a failed
        # write shows up as a missing file, checked below.
        tools.run(["debugfs", "-w", "-f", script, image])
    for path, content in files.items():
        if _debugfs(image, f"cat {path}", write=False) != content:
            raise ToolError(f"debugfs: could not write {path} into {image}")


def _debugfs(image: Path, cmd: str, *, write: bool) -> str:
    argv = ["debugfs", *(["-w"] if write else []), "-R", cmd, image]
    return tools.run(argv).decode(errors="replace")


def _mkfs(out: Path, size: int, label: str, src: Path | None, board: Board) -> None:
    argv = ["mkfs.ext4", "-q", "-F", "-L", label, "-b", "4096"]
    argv += ["-d", src] if src is not None else []
    try:
        tools.run([*argv, out, f"{size // 1024}k"])
    except ToolError as exc:
        text = str(exc)
        if any(s in text for s in ("allocate", "No space", "Could not", "too small")):
            raise FitError(
                f"{src}: rootfs does not fit the slot (partitions.rootfs_mib = "
                f"{board.partitions.rootfs_mib} in {board.source})"
            ) from exc
        raise


def _check_apparent_size(src: Path, size: int, board: Board) -> None:
    total = 0
    for root, _dirs, files in os.walk(src):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    if total > size:
        raise FitError(
            f"{src}: rootfs holds {total // MIB} MiB, more than the slot "
            f"(partitions.rootfs_mib = {board.partitions.rootfs_mib} in {board.source})"
        )


def _from_tar(src: Path, out: Path, size: int, label: str, board: Board) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tree = Path(tmp) / "rootfs"
        tree.mkdir()
        if os.geteuid() == 0:
            tools.run(["tar", "-x", "--numeric-owner", "-f", src, "-C", tree])
            _mkfs(out, size, label, tree, board)
            return
        # Not root: keep the tarball's owners by running tar and mkfs in one
        # fakeroot session, which records them in memory.
        tools.require("fakeroot")
        script = (
            f"tar -x --numeric-owner -f '{src}' -C '{tree}' && "
            f"mkfs.ext4 -q -F -L '{label}' -b 4096 -d '{tree}' '{out}' {size // 1024}k"
        )
        try:
            tools.run(["fakeroot", "sh", "-c", script])
        except ToolError as exc:
            if "allocate" in str(exc) or "No space" in str(exc):
                raise FitError(
                    f"{src}: rootfs does not fit the slot (partitions.rootfs_mib = "
                    f"{board.partitions.rootfs_mib} in {board.source})"
                ) from exc
            raise


def _from_ext4(src: Path, out: Path, size: int, board: Board) -> None:
    if src.stat().st_size > size:
        raise FitError(
            f"{src}: ext4 image is {src.stat().st_size // MIB} MiB, larger than the slot "
            f"(partitions.rootfs_mib = {board.partitions.rootfs_mib} in {board.source})"
        )
    shutil.copyfile(src, out)
    tools.run(["e2fsck", "-fy", out])
    tools.run(["resize2fs", "-f", out, f"{size // 1024}K"])
