"""Fixtures for the build-system integration tests; helpers are in integrations_helpers.py.

The layer's Python helpers (meta-pyupdate/lib/pyupdate_layer) are installed by the
dev package (testing/pyproject.toml). ci/yocto and ci/closure are folders of scripts
whose modules import each other by bare name, so these tests put the two folders on
sys.path, here, once. Both have a record.py: `import record` is ci/yocto's (the closure
one is a command, never imported).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from integrations_helpers import ALL_FEATURES

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "ci" / "yocto"), str(REPO / "ci" / "closure")]


@pytest.fixture
def getvar_defaults() -> dict[str, str]:
    """The expanded defaults of pyupdate-setup.bbclass for qemux86-64, as bitbake -e shows them."""
    return {
        "MACHINE": "qemux86-64",
        "MACHINEOVERRIDES": "x86:qemuall:qemux86-64",
        "TARGET_ARCH": "x86_64",
        "DISTRO_FEATURES": "acl ipv4 ipv6 systemd usrmerge pyupdate",
        "INIT_MANAGER": "systemd",
        "PYUPDATE_FEATURES_ENABLE": ALL_FEATURES,
        "PYUPDATE_FEATURES_DISABLE": "",
        "PYUPDATE_FEATURES": ALL_FEATURES,
        "DEPLOY_DIR_IMAGE": "/build/tmp/deploy/images/qemux86-64",
        "UBOOT_BINARY": "u-boot.rom",
        "QB_SYSTEM_NAME": "qemu-system-x86_64",
        "PYUPDATE_DEVICE_TYPE": "qemux86-64",
        "PYUPDATE_DEVICE_TYPES_COMPATIBLE": "qemux86-64",
        "PYUPDATE_ARTIFACT_NAME": "pyupdate-image-minimal-nodistro.0",
        "PYUPDATE_ARTIFACT_COMPRESSION": "gzip",
        "PYUPDATE_SIGNING_REQUIRED": "0",
        "PYUPDATE_STORAGE_DEVICE": "/dev/vda",
        "PYUPDATE_STORAGE_PART_SEPARATOR": "",
        "PYUPDATE_STORAGE_TOTAL_SIZE_MB": "1024",
        "PYUPDATE_PARTITION_ALIGNMENT_MB": "1",
        "PYUPDATE_BOOT_PART_SIZE_MB": "32",
        "PYUPDATE_ROOTFS_PART_SIZE_MB": "431",
        "PYUPDATE_DATA_PART_SIZE_MB": "128",
        "PYUPDATE_BOOT_MOUNT_POINT": "/boot/uboot",
        "PYUPDATE_DATA_MOUNT_POINT": "/data",
        "PYUPDATE_UBOOT_ENV_SIZE": "0x4000",
        "PYUPDATE_UBOOT_ENV_FILES": "uboot.env uboot-redund.env",
        "PYUPDATE_UBOOT_ENV_OFFSETS": "0x0 0x0",
        "PYUPDATE_UBOOT_ENV_PERSIST": "",
        "PYUPDATE_UBOOT_BOOTLIMIT": "1",
        "PYUPDATE_UBOOT_INTERFACE": "virtio",
        "PYUPDATE_UBOOT_DEVICE": "0",
        "PYUPDATE_UBOOT_BOOT_COMMAND": "zboot",
        "PYUPDATE_UBOOT_MKIMAGE_ARCH": "x86",
        "PYUPDATE_UBOOT_KERNEL_ADDR": "",
        "PYUPDATE_UBOOT_RAMDISK_ADDR": "0x10000000",
        "PYUPDATE_UBOOT_SCRATCH_ADDR": "0x7100000",
        "PYUPDATE_KERNEL_IMAGE": "/boot/bzImage",
        "PYUPDATE_KERNEL_BOOTARGS": "rw console=ttyS0,115200 panic=5",
        "PYUPDATE_UPDATE_POLL_INTERVAL": "1800",
        "PYUPDATE_INVENTORY_POLL_INTERVAL": "28800",
    }
