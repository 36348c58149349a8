"""Bootloader backends by name (the `Bootloader` config key)."""

from __future__ import annotations

from ..config import Config
from .base import BootEnv
from .grub import GrubEnv
from .uboot import UBootEnv


def open_bootenv(config: Config) -> BootEnv:
    if config.bootloader == "grub":
        return GrubEnv(config.grub_env_file)
    return UBootEnv(config.fw_env_config, config.boot_utilities_get, config.boot_utilities_set)


__all__ = ["BootEnv", "GrubEnv", "UBootEnv", "open_bootenv"]
