"""slots.py: partition numbers, and which slot runs (the bootloader's word or the mounted root)."""

from __future__ import annotations

import os
import stat

import pytest

from pyupdate_agent.config import Config
from pyupdate_agent.errors import SlotError
from pyupdate_agent.slots import mounted_slot, other_slot, running_slot, slots_from_config

SLOTS = slots_from_config(Config(rootfs_part_a="/dev/mmcblk0p2", rootfs_part_b="/dev/mmcblk0p3"))
A, B = SLOTS


def test_partition_numbers_are_the_trailing_digits():
    assert (A.number, B.number) == (2, 3)
    assert other_slot(SLOTS, A) == B


@pytest.mark.parametrize(
    ("a", "b", "words"),
    [
        (None, "/dev/sda3", "must be set"),
        ("/dev/sda", "/dev/sda3", "partition number"),
        ("/dev/sda3", "/dev/sdb3", "both end"),
    ],
)
def test_bad_slot_config_is_refused(a, b, words):
    with pytest.raises(SlotError, match=words):
        slots_from_config(Config(rootfs_part_a=a, rootfs_part_b=b))


def test_without_a_mounted_slot_the_bootloader_decides():
    assert running_slot(SLOTS, B, root_dev=-1) == B
    assert running_slot(SLOTS, A, root_dev=-1) == A


def test_files_are_never_the_mounted_root(tmp_path):
    a, b = tmp_path / "rootfs2", tmp_path / "rootfs3"
    a.write_bytes(b"")
    b.write_bytes(b"")
    slots = slots_from_config(Config(rootfs_part_a=str(a), rootfs_part_b=str(b)))
    assert mounted_slot(slots, os.stat("/").st_dev) is None


def test_mounted_block_device_wins_over_env(tmp_path):
    disk = next(
        (
            f"/dev/{n}"
            for n in sorted(os.listdir("/dev"))
            if n.startswith(("vd", "sd", "loop", "nvme"))
            and stat.S_ISBLK(os.stat(f"/dev/{n}").st_mode)
        ),
        None,
    )
    if disk is None:
        pytest.skip("no block device node to stand for the root")
    (tmp_path / "root3").symlink_to(disk)  # symlinks are resolved, like mender does
    slots = slots_from_config(
        Config(rootfs_part_a=str(tmp_path / "root2"), rootfs_part_b=str(tmp_path / "root3"))
    )
    assert running_slot(slots, slots[0], root_dev=os.stat(disk).st_rdev) == slots[1]
