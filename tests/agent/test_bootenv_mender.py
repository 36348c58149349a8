"""bootenv/mender.py: Mender's variables read as a BootState, and written for a slot."""

from __future__ import annotations

import pytest

from pyupdate_agent.bootenv.base import BootState
from pyupdate_agent.bootenv.mender import boot_vars, decode
from pyupdate_agent.config import Config
from pyupdate_agent.errors import BootEnvError
from pyupdate_agent.slots import slots_from_config

SLOTS = slots_from_config(Config(rootfs_part_a="/dev/mmcblk0p2", rootfs_part_b="/dev/mmcblk0p3"))
A, B = SLOTS


def test_committed_env_boots_boot_part():
    env = {"mender_boot_part": "3", "upgrade_available": "0", "bootcount": "0"}
    assert decode("uboot", env, SLOTS) == BootState(primary=B, booted=B, trial=False)


def test_trial_not_yet_booted_still_runs_the_other_slot():
    env = {"mender_boot_part": "3", "upgrade_available": "1", "bootcount": "0"}
    assert decode("uboot", env, SLOTS) == BootState(primary=B, booted=A, trial=True)


def test_trial_booted_runs_new_slot():
    env = {"mender_boot_part": "3", "upgrade_available": "1", "bootcount": "1"}
    assert decode("uboot", env, SLOTS) == BootState(primary=B, booted=B, trial=True)


def test_unreadable_bootcount_counts_as_not_booted():
    env = {"mender_boot_part": "3", "upgrade_available": "1", "bootcount": "x"}
    assert decode("uboot", env, SLOTS).booted == A


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"mender_boot_part": "7"}, r"^grub: mender_boot_part: partition 7 is neither"),
        ({}, r"^grub: mender_boot_part is None, not a partition number"),
        ({"mender_boot_part": "b"}, r"^grub: mender_boot_part is 'b', not a partition number"),
    ],
)
def test_boot_part_outside_the_slots_names_the_backend(env, words):
    with pytest.raises(BootEnvError, match=words):
        decode("grub", env, SLOTS)


@pytest.mark.parametrize(
    ("state", "fell_back"),
    [
        (BootState(primary=B, booted=A, trial=True), False),  # not started yet
        (BootState(primary=B, booted=B, trial=True), False),  # on trial
        (BootState(primary=B, booted=B, trial=False), False),  # confirmed
        (BootState(primary=A, booted=A, trial=False), True),  # the bootloader gave up on B
    ],
)
def test_fell_back_is_no_trial_and_another_primary(state, fell_back):
    assert state.fell_back(B) is fell_back


def test_boot_vars_hex_is_upper_case_like_mender_34():
    slots = slots_from_config(Config(rootfs_part_a="/dev/x10", rootfs_part_b="/dev/x11"))
    assert boot_vars(slots[1]) == {"mender_boot_part": "11", "mender_boot_part_hex": "B"}
