"""slots.py: partition numbers, which slot runs, and the boot variables."""

from __future__ import annotations

import os
import stat

import pytest

from pyupdate_agent.config import Config
from pyupdate_agent.errors import SlotError
from pyupdate_agent.slots import (
    boot_vars,
    mounted_slot,
    other_slot,
    running_slot,
    slots_from_config,
)

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


def test_committed_env_runs_boot_part():
    env = {"mender_boot_part": "3", "upgrade_available": "0", "bootcount": "0"}
    assert running_slot(SLOTS, env, root_dev=-1) == B


def test_trial_not_yet_booted_still_runs_the_other_slot():
    env = {"mender_boot_part": "3", "upgrade_available": "1", "bootcount": "0"}
    assert running_slot(SLOTS, env, root_dev=-1) == A


def test_trial_booted_runs_new_slot():
    env = {"mender_boot_part": "3", "upgrade_available": "1", "bootcount": "1"}
    assert running_slot(SLOTS, env, root_dev=-1) == B


def test_boot_part_outside_the_slots_is_an_error():
    with pytest.raises(SlotError, match="neither"):
        running_slot(SLOTS, {"mender_boot_part": "7"}, root_dev=-1)
    with pytest.raises(SlotError, match="not a partition number"):
        running_slot(SLOTS, {}, root_dev=-1)


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
    env = {"mender_boot_part": "2", "upgrade_available": "0"}
    assert running_slot(slots, env, root_dev=os.stat(disk).st_rdev) == slots[1]


def test_boot_vars_hex_is_upper_case_like_mender_34():
    slots = slots_from_config(Config(rootfs_part_a="/dev/x10", rootfs_part_b="/dev/x11"))
    assert boot_vars(slots[1]) == {"mender_boot_part": "11", "mender_boot_part_hex": "B"}
