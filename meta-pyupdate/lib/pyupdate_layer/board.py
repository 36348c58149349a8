"""The pyupdate-image board config written from PYUPDATE_* variables.

pyupdate-image (artifact_tool) owns the boot logic: its templates render
boot.scr, the initial env and fw_env.config from one board config. The layer
only translates bitbake variables into that config, so Yocto builds and the
QEMU tests render from the same templates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

GetVar = Callable[[str], str | None]

# TARGET_ARCH -> board "arch"
_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64", "arm": "arm"}


# TARGET_ARCH -> mkimage -A, as oe-core's kernel-arch.bbclass derives UBOOT_ARCH
# (map_kernel_arch, then map_uboot_arch). Here, not ${UBOOT_ARCH}: that is only
# defined in recipes that inherit kernel-arch, and libubootenv does not.
_MKIMAGE_ARCH = (
    (r"(i.86|athlon|x86.64)$", "x86"),
    (r"armeb$|arm$", "arm"),
    (r"aarch64(_be)?(_ilp32)?$", "arm64"),
    (r"riscv(32|64|)(eb|)$", "riscv"),
    (r"mips(isa|)(32|64|)(r6|)(el|)$", "mips"),
    (r"p(pc|owerpc)(|64)", "ppc"),
    (r"loongarch(32|64|)$", "loongarch"),
    (r"arceb$|arc$", "arc"),
    (r"sh(3|4)$", "sh"),
    (r"mcf", "m68k"),
    (r"microblazee[bl]", "microblaze"),
)


def mkimage_arch(target_arch: str) -> str:
    """U-Boot's name for TARGET_ARCH (x86_64 -> x86, aarch64 -> arm64); "" when unknown."""
    for pattern, name in _MKIMAGE_ARCH:
        if re.match(pattern, target_arch):
            return name
    return ""


def console_bootarg(serial_consoles: str) -> str:
    """`115200;ttyS0 115200;ttyS1` -> `console=ttyS0,115200` (the first one)."""
    first = serial_consoles.split()[0] if serial_consoles.split() else ""
    if ";" not in first:
        return ""
    speed, tty = first.split(";", 1)
    return f"console={tty},{speed}"


def board_config(getvar: GetVar) -> dict[str, object]:
    def var(name: str) -> str:
        return getvar(name) or ""

    arch = var("TARGET_ARCH")
    uboot: dict[str, object] = {
        "binary": f"{var('DEPLOY_DIR_IMAGE')}/{var('UBOOT_BINARY') or 'u-boot.bin'}",
        "mkimage_arch": var("PYUPDATE_UBOOT_MKIMAGE_ARCH"),
        "boot_command": var("PYUPDATE_UBOOT_BOOT_COMMAND"),
        "interface": var("PYUPDATE_UBOOT_INTERFACE"),
        "device": int(var("PYUPDATE_UBOOT_DEVICE") or "0"),
        "ramdisk_addr_r": var("PYUPDATE_UBOOT_RAMDISK_ADDR"),
        "scratch_addr": var("PYUPDATE_UBOOT_SCRATCH_ADDR"),
        "bootlimit": int(var("PYUPDATE_UBOOT_BOOTLIMIT") or "1"),
    }
    if var("PYUPDATE_UBOOT_KERNEL_ADDR"):
        uboot["kernel_addr_r"] = var("PYUPDATE_UBOOT_KERNEL_ADDR")
    return {
        "$comment": "Written by meta-pyupdate from PYUPDATE_* variables; edit those, not this file.",
        "version": 1,
        "name": f"yocto-{var('MACHINE')}",
        "arch": _ARCH.get(arch, arch),
        "device_type": var("PYUPDATE_DEVICE_TYPE"),
        "qemu": {"binary": var("QB_SYSTEM_NAME") or "none", "machine": "none"},
        "uboot": uboot,
        "storage": {
            "linux_device": var("PYUPDATE_STORAGE_DEVICE"),
            "partition_separator": var("PYUPDATE_STORAGE_PART_SEPARATOR"),
        },
        "partitions": {
            "align_mib": int(var("PYUPDATE_PARTITION_ALIGNMENT_MB")),
            "boot_mib": int(var("PYUPDATE_BOOT_PART_SIZE_MB")),
            "rootfs_mib": int(var("PYUPDATE_ROOTFS_PART_SIZE_MB")),
            "data_mib": int(var("PYUPDATE_DATA_PART_SIZE_MB")),
        },
        "env": {
            "size": var("PYUPDATE_UBOOT_ENV_SIZE"),
            "files": var("PYUPDATE_UBOOT_ENV_FILES").split(),
            "offsets": var("PYUPDATE_UBOOT_ENV_OFFSETS").split(),
            "mount_point": var("PYUPDATE_BOOT_MOUNT_POINT"),
            "persist": var("PYUPDATE_UBOOT_ENV_PERSIST").split(),
        },
        "kernel": {
            "image": var("PYUPDATE_KERNEL_IMAGE"),
            "initrd": None,
            "bootargs": var("PYUPDATE_KERNEL_BOOTARGS"),
        },
        "data": {"mount_point": var("PYUPDATE_DATA_MOUNT_POINT"), "label": "data"},
    }


def write_board(getvar: GetVar, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(board_config(getvar), f, indent=2)
        f.write("\n")


# Where the agent recipe installs the files PYUPDATE_SERVER_CERT and
# PYUPDATE_ARTIFACT_VERIFY_KEY name on the build host.
SERVER_CERT_PATH = "/etc/pyupdate/server.crt"
VERIFY_KEY_PATH = "/etc/pyupdate/artifact-verify-key.pem"


def fstab_lines(getvar: GetVar) -> list[str]:
    """The boot (FAT) and data partitions as /etc/fstab lines of the rootfs itself.

    In the rootfs, not only in wic's copy of it: the artifact carries the plain
    ext4, so an updated slot must mount /boot/uboot (fw_env.config points
    there) and /data (the agent's state) by itself, as meta-mender's fstab does.
    """

    def var(name: str) -> str:
        return getvar(name) or ""

    disk = var("PYUPDATE_STORAGE_DEVICE") + var("PYUPDATE_STORAGE_PART_SEPARATOR")
    return [
        # sync: the env copies are small and must be on disk before a reboot
        f"{disk}1\t{var('PYUPDATE_BOOT_MOUNT_POINT')}\tvfat\tdefaults,sync\t0\t0",
        f"{disk}4\t{var('PYUPDATE_DATA_MOUNT_POINT')}\text4\tdefaults\t0\t0",
    ]


def fstab_text(getvar: GetVar) -> str:
    return "\n".join(fstab_lines(getvar))


def agent_config(getvar: GetVar) -> dict[str, object]:
    """/etc/pyupdate/pyupdate.conf (mender.conf keys) for this image."""

    def var(name: str) -> str:
        return getvar(name) or ""

    disk = var("PYUPDATE_STORAGE_DEVICE") + var("PYUPDATE_STORAGE_PART_SEPARATOR")
    conf: dict[str, object] = {
        "RootfsPartA": f"{disk}2",
        "RootfsPartB": f"{disk}3",
        "Bootloader": "uboot",
        "FwEnvConfig": "/etc/fw_env.config",
        "DeviceTypeFile": "/etc/pyupdate/device_type",
        "UpdatePollIntervalSeconds": int(var("PYUPDATE_UPDATE_POLL_INTERVAL") or "1800"),
        "InventoryPollIntervalSeconds": int(var("PYUPDATE_INVENTORY_POLL_INTERVAL") or "1800"),
    }
    if var("PYUPDATE_SERVER_URL"):
        conf["ServerURL"] = var("PYUPDATE_SERVER_URL")
    if var("PYUPDATE_SERVER_CERT"):
        conf["ServerCertificate"] = SERVER_CERT_PATH
    if var("PYUPDATE_TENANT_TOKEN"):
        conf["TenantToken"] = var("PYUPDATE_TENANT_TOKEN")
    if var("PYUPDATE_ARTIFACT_VERIFY_KEY"):
        conf["ArtifactVerifyKey"] = VERIFY_KEY_PATH
    return conf
