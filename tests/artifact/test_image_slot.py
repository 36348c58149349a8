"""Slot images from a directory, a tarball or an ext4 image, with the device files added."""

from __future__ import annotations

import json
import subprocess
import tarfile
from importlib import resources
from pathlib import Path

import pytest

from pyupdate_host.image.board import load_board
from pyupdate_host.image.errors import FitError, InputError
from pyupdate_host.image.slot import make_slot_image, rootfs_kind

pytestmark = pytest.mark.uboot


def small_board(tmp_path: Path, rootfs_mib: int = 16) -> str:
    src = resources.files("pyupdate_host.image").joinpath("boards", "qemu-x86_64.json")
    raw = json.loads(src.read_text())
    raw["partitions"] = {"boot_mib": 16, "rootfs_mib": rootfs_mib, "data_mib": 8}
    path = tmp_path / "small.json"
    path.write_text(json.dumps(raw))
    return str(path)


def tiny_rootfs(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "etc/fstab").write_text("proc /proc proc defaults 0 0\n")
    (root / "boot/vmlinuz").write_bytes(b"kernel")
    return root


def cat(image: Path, path: str) -> str:
    done = subprocess.run(["debugfs", "-R", f"cat {path}", image], capture_output=True, check=True)
    return done.stdout.decode()


def test_slot_from_dir_is_slot_sized_and_carries_device_files(tmp_path):
    board = load_board(small_board(tmp_path))
    out = tmp_path / "slot.ext4"
    make_slot_image(board, tiny_rootfs(tmp_path / "r"), out, "release-1", "rootfs")
    assert out.stat().st_size == 16 * 1024 * 1024
    assert cat(out, "/boot/vmlinuz") == "kernel"
    assert cat(out, "/etc/pyupdate/artifact_info") == "artifact_name=release-1\n"
    assert "/boot/uboot/uboot-redund.env 0x0 0x4000" in cat(out, "/etc/fw_env.config")
    fstab = cat(out, "/etc/fstab")
    assert fstab.startswith("proc /proc")
    assert "/dev/vda1 /boot/uboot vfat" in fstab and "LABEL=data /data ext4" in fstab


def test_input_rootfs_dir_is_not_modified(tmp_path):
    board = load_board(small_board(tmp_path))
    root = tiny_rootfs(tmp_path / "r")
    make_slot_image(board, root, tmp_path / "slot.ext4", "v", "rootfs")
    assert not (root / "etc/fw_env.config").exists()
    assert (root / "etc/fstab").read_text() == "proc /proc proc defaults 0 0\n"


def test_slot_from_tarball(tmp_path):
    board = load_board(small_board(tmp_path))
    root = tiny_rootfs(tmp_path / "r")
    tar = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(root, arcname=".")
    make_slot_image(board, tar, tmp_path / "slot.ext4", "v", "rootfs")
    assert cat(tmp_path / "slot.ext4", "/boot/vmlinuz") == "kernel"


def test_slot_from_smaller_ext4_is_grown_to_the_slot(tmp_path):
    board = load_board(small_board(tmp_path))
    small = tmp_path / "small.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-d", tiny_rootfs(tmp_path / "r"), small, "8M"], check=True)
    make_slot_image(board, small, tmp_path / "slot.ext4", "v", "rootfs")
    assert (tmp_path / "slot.ext4").stat().st_size == 16 * 1024 * 1024
    assert cat(tmp_path / "slot.ext4", "/boot/vmlinuz") == "kernel"


def test_rootfs_larger_than_slot_names_the_board_field(tmp_path):
    board = load_board(small_board(tmp_path))
    root = tiny_rootfs(tmp_path / "r")
    (root / "big").write_bytes(b"\1" * (20 * 1024 * 1024))
    with pytest.raises(FitError, match=r"partitions\.rootfs_mib = 16"):
        make_slot_image(board, root, tmp_path / "slot.ext4", "v", "rootfs")


def test_nearly_full_rootfs_that_mkfs_cannot_place_is_a_fit_error(tmp_path):
    board = load_board(small_board(tmp_path))
    root = tiny_rootfs(tmp_path / "r")
    (root / "big").write_bytes(b"\1" * (15 * 1024 * 1024 + 900 * 1024))
    with pytest.raises(FitError, match="does not fit the slot"):
        make_slot_image(board, root, tmp_path / "slot.ext4", "v", "rootfs")


def test_unknown_rootfs_kind_is_refused(tmp_path):
    junk = tmp_path / "rootfs.bin"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(InputError, match="neither a directory, a tarball nor an ext4 image"):
        rootfs_kind(junk)
    with pytest.raises(InputError, match="rootfs not found"):
        rootfs_kind(tmp_path / "missing")
