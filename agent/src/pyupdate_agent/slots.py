"""The A/B slots: which one runs now, which one an update may write.

The bootloader says which slot it booted (bootenv/, `BootState.booted`). When
the slots are block devices the mounted root is the final word: the slot
holding `/` is never the one we write (docs/boot-env.md, "Which slot runs").
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass

from .config import Config
from .errors import SlotError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Slot:
    """Args:
    label: `A` or `B`.
    path: block device, or a plain file in host mode.
    number: partition number, the trailing digits of `path` (mender's rule).
    """

    label: str
    path: str
    number: int


def slots_from_config(config: Config) -> tuple[Slot, Slot]:
    if not config.rootfs_part_a or not config.rootfs_part_b:
        raise SlotError(
            "RootfsPartA and RootfsPartB must be set in the config to install rootfs-image"
        )
    a = Slot("A", config.rootfs_part_a, _partition_number("RootfsPartA", config.rootfs_part_a))
    b = Slot("B", config.rootfs_part_b, _partition_number("RootfsPartB", config.rootfs_part_b))
    if a.number == b.number:
        raise SlotError(f"RootfsPartA and RootfsPartB both end in partition number {a.number}")
    return a, b


def _partition_number(key: str, path: str) -> int:
    match = re.search(r"(\d+)$", path)
    if not match:
        raise SlotError(f"{key}: {path} does not end in a partition number")
    return int(match.group(1))


def slot_by_number(slots: tuple[Slot, Slot], number: int) -> Slot:
    for slot in slots:
        if slot.number == number:
            return slot
    raise SlotError(
        f"partition {number} is neither RootfsPartA ({slots[0].number})"
        f" nor RootfsPartB ({slots[1].number})"
    )


def other_slot(slots: tuple[Slot, Slot], slot: Slot) -> Slot:
    return slots[1] if slot == slots[0] else slots[0]


def running_slot(slots: tuple[Slot, Slot], booted: Slot, root_dev: int | None = None) -> Slot:
    """The slot the system runs from now: the bootloader's `booted`, unless the mounted root
    says otherwise."""
    mounted = mounted_slot(slots, root_dev)
    if mounted is not None and mounted != booted:
        log.warning(
            "bootloader and mounted root disagree; trusting the mounted root",
            extra={"slot": mounted.label, "env_slot": booted.label},
        )
        return mounted
    return booted


def mounted_slot(slots: tuple[Slot, Slot], root_dev: int | None = None) -> Slot | None:
    """The slot whose block device holds `/`, or None (files, or neither matches)."""
    if root_dev is None:
        try:
            root_dev = os.stat("/").st_dev
        except OSError:
            return None
    for slot in slots:
        try:
            st = os.stat(slot.path)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode) and st.st_rdev == root_dev:
            return slot
    return None
