"""Bootloader backends by name (the `Bootloader` config key), one module each."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Config
from ..slots import Slot, slots_from_config
from .base import BootEnv, BootState
from .grub import GrubEnv
from .uboot import UBootEnv

BACKENDS: dict[str, Callable[[Config, tuple[Slot, Slot]], BootEnv]] = {
    "uboot": lambda c, slots: UBootEnv(
        slots, c.fw_env_config, c.boot_utilities_get, c.boot_utilities_set
    ),
    "grub": lambda c, slots: GrubEnv(slots, c.grub_env_file),
}


def open_bootenv(config: Config) -> BootEnv:
    """The configured backend for the slots RootfsPartA and RootfsPartB (SlotError if unset)."""
    return BACKENDS[config.bootloader](config, slots_from_config(config))


__all__ = ["BACKENDS", "BootEnv", "BootState", "GrubEnv", "UBootEnv", "open_bootenv"]
