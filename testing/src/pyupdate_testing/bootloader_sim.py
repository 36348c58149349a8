"""Plays the bootloader between agent runs, on the real env file with the real tools.

The rules are those of docs/boot-env.md ("Boot rules"), the same as the U-Boot
boot script (artifact_tool .../templates/uboot/boot.cmd.j2) and Mender's
grub-mender-grubenv. No fake env: fw_printenv/fw_setenv and grub-editenv do
all reads and writes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def uboot_env(fw_env_config: Path) -> dict[str, str]:
    out = subprocess.run(
        ["fw_printenv", "-c", str(fw_env_config)], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def uboot_set(fw_env_config: Path, values: dict[str, str]) -> None:
    script = "".join(f"{k}={v}\n" for k, v in values.items())
    subprocess.run(
        ["fw_setenv", "-c", str(fw_env_config), "-s", "-"], input=script, text=True, check=True
    )


def uboot_boot(fw_env_config: Path, part_a: int, part_b: int) -> int:
    """One power-on of U-Boot with bootcount_env: returns the partition it boots.

    On a trial (upgrade_available=1) bootcount is incremented; past bootlimit,
    altbootcmd swaps mender_boot_part and clears upgrade_available. A boot
    that fails is simulated by calling this again (the board resets).
    """
    env = uboot_env(fw_env_config)
    part = int(env.get("mender_boot_part", part_a))
    changes: dict[str, str] = {}
    if env.get("upgrade_available") == "1":
        count = int(env.get("bootcount", "0") or 0) + 1
        changes["bootcount"] = str(count)
        if count > int(env.get("bootlimit", "1") or 1):
            part = part_b if part == part_a else part_a
            changes["upgrade_available"] = "0"
            changes["mender_boot_part"] = str(part)
            changes["mender_boot_part_hex"] = f"{part:X}"
    if changes:
        uboot_set(fw_env_config, changes)
    return part


def grub_env(grubenv: Path) -> dict[str, str]:
    out = subprocess.run(
        ["grub-editenv", str(grubenv), "list"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def grub_boot(grubenv: Path, part_a: int, part_b: int) -> int:
    """One boot of grub-mender-grubenv's script: bootcount 0 -> 1, else roll back."""
    env = grub_env(grubenv)
    part = int(env.get("mender_boot_part", part_a))
    changes: dict[str, str] = {}
    if env.get("upgrade_available") == "1":
        if env.get("bootcount", "0") != "0":
            part = part_b if part == part_a else part_a
            changes = {"mender_boot_part": str(part), "upgrade_available": "0", "bootcount": "0"}
        else:
            changes = {"bootcount": "1"}
    if changes:
        subprocess.run(
            ["grub-editenv", str(grubenv), "set", *(f"{k}={v}" for k, v in changes.items())],
            check=True,
        )
    return part
