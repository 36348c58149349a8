"""meta-pyupdate/lib/pyupdate_layer/checks.py: the parse-time checks, one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from integrations_helpers import ALL_FEATURES as ALL
from integrations_helpers import LAYER
from pyupdate_layer import board, checks, features

KNOWN = checks.known_variables(str(LAYER / "conf" / "pyupdate-vars.json"))


def problem(values: dict[str, str], names: list[str] | None = None) -> str | None:
    return checks.check(values.get, KNOWN, names if names is not None else list(values))


def test_defaults_pass(getvar_defaults):
    assert problem(getvar_defaults) is None


def test_unknown_variable_is_named(getvar_defaults):
    msg = problem(getvar_defaults, [*getvar_defaults, "PYUPDATE_DEVICE_TPYE"])
    assert msg is not None and msg.startswith("PYUPDATE_DEVICE_TPYE: unknown variable")
    assert "\n" not in msg


def test_default_and_override_forms_are_known(getvar_defaults):
    names = [
        *getvar_defaults,
        "PYUPDATE_DEVICE_TYPE_DEFAULT",
        "PYUPDATE_UBOOT_BOOT_COMMAND_DEFAULT:aarch64",
    ]
    assert problem(getvar_defaults, names) is None


def test_unknown_default_of_unknown_variable_is_named(getvar_defaults):
    msg = problem(getvar_defaults, [*getvar_defaults, "PYUPDATE_FOO_DEFAULT"])
    assert msg is not None and msg.startswith("PYUPDATE_FOO_DEFAULT:")


@pytest.mark.parametrize("value", ["my board", "", "tab\tbed"])
def test_device_type_with_spaces_is_refused(getvar_defaults, value):
    msg = problem({**getvar_defaults, "PYUPDATE_DEVICE_TYPE": value})
    assert msg is not None and msg.startswith("PYUPDATE_DEVICE_TYPE:")


def test_missing_signing_key_file_is_named(getvar_defaults, tmp_path: Path):
    msg = problem({**getvar_defaults, "PYUPDATE_ARTIFACT_SIGNING_KEY": str(tmp_path / "nokey.pem")})
    assert msg == f"PYUPDATE_ARTIFACT_SIGNING_KEY: {tmp_path / 'nokey.pem'}: file not found"


def test_existing_signing_key_passes(getvar_defaults, tmp_path: Path):
    key = tmp_path / "key.pem"
    key.write_text("x")
    pub = tmp_path / "pub.pem"
    pub.write_text("x")
    values = {
        **getvar_defaults,
        "PYUPDATE_ARTIFACT_SIGNING_KEY": str(key),
        "PYUPDATE_ARTIFACT_VERIFY_KEY": str(pub),
    }
    assert problem({**values, "PYUPDATE_SIGNING_REQUIRED": "1"}) is None


def test_signing_required_without_verify_key_stops(getvar_defaults, tmp_path: Path):
    """A signed artifact is worth nothing if the device accepts unsigned ones too."""
    key = tmp_path / "key.pem"
    key.write_text("x")
    values = {**getvar_defaults, "PYUPDATE_ARTIFACT_SIGNING_KEY": str(key)}
    msg = problem({**values, "PYUPDATE_SIGNING_REQUIRED": "1"})
    assert msg is not None and msg.startswith("PYUPDATE_ARTIFACT_VERIFY_KEY: not set")
    assert "\n" not in msg


def test_signing_required_without_key_stops(getvar_defaults):
    msg = problem({**getvar_defaults, "PYUPDATE_SIGNING_REQUIRED": "1"})
    assert msg is not None and msg.startswith("PYUPDATE_ARTIFACT_SIGNING_KEY: not set")


def test_missing_verify_key_is_named(getvar_defaults, tmp_path: Path):
    msg = problem({**getvar_defaults, "PYUPDATE_ARTIFACT_VERIFY_KEY": str(tmp_path / "pub.pem")})
    assert msg is not None and msg.startswith("PYUPDATE_ARTIFACT_VERIFY_KEY:")


def test_partitions_larger_than_storage_are_refused(getvar_defaults):
    msg = problem({**getvar_defaults, "PYUPDATE_ROOTFS_PART_SIZE_MB": "500"})
    assert msg is not None
    assert msg.startswith("PYUPDATE_ROOTFS_PART_SIZE_MB: boot + 2 x rootfs + data need 1161 MiB")
    assert "PYUPDATE_STORAGE_TOTAL_SIZE_MB = 1024" in msg


def test_non_numeric_size_is_named(getvar_defaults):
    msg = problem({**getvar_defaults, "PYUPDATE_DATA_PART_SIZE_MB": "128M"})
    assert msg == "PYUPDATE_DATA_PART_SIZE_MB: '128M' is not a whole number of MiB"


def test_missing_fw_env_config_is_named(getvar_defaults, tmp_path: Path):
    msg = problem({**getvar_defaults, "PYUPDATE_FW_ENV_CONFIG": str(tmp_path / "fw_env.config")})
    assert msg is not None and msg.startswith("PYUPDATE_FW_ENV_CONFIG:")
    assert "file not found" in msg


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PYUPDATE_UBOOT_ENV_SIZE", "16384"),
        ("PYUPDATE_UBOOT_ENV_FILES", "uboot.env"),
        ("PYUPDATE_UBOOT_ENV_OFFSETS", "0 0"),
        ("PYUPDATE_ARTIFACT_COMPRESSION", "bzip2"),
        ("PYUPDATE_ARTIFACT_PROVIDES", "novalue"),
        ("PYUPDATE_STORAGE_DEVICE", "vda"),
    ],
)
def test_bad_value_names_its_variable(getvar_defaults, var, value):
    msg = problem({**getvar_defaults, var: value})
    assert msg is not None and msg.startswith(f"{var}:")


def test_default_rootfs_size_fills_the_storage(getvar_defaults):
    # 1024 - (1 align + 32 boot) - 128 data = 863, split in two, aligned down
    assert checks.default_rootfs_size(getvar_defaults.get) == 431
    lay = checks.layout_mib(getvar_defaults.get)
    assert lay["end"] <= 1024


def test_default_rootfs_size_respects_alignment(getvar_defaults):
    values = {**getvar_defaults, "PYUPDATE_PARTITION_ALIGNMENT_MB": "8"}
    size = checks.default_rootfs_size(values.get)
    assert size % 8 == 0
    assert (
        checks.layout_mib({**values, "PYUPDATE_ROOTFS_PART_SIZE_MB": str(size)}.get)["end"] <= 1024
    )


@pytest.mark.parametrize(
    ("target_arch", "expected"),
    [
        ("x86_64", "x86"),
        ("i686", "x86"),
        ("aarch64", "arm64"),
        ("arm", "arm"),
        ("riscv64", "riscv"),
        ("powerpc64", "ppc"),
        ("mipsel", "mips"),
        ("xtensa", ""),
    ],
)
def test_mkimage_arch_maps_target_arch_as_kernel_arch_does(target_arch, expected):
    """The one home of the mkimage arch: no ${UBOOT_ARCH}, which libubootenv lacks."""
    assert board.mkimage_arch(target_arch) == expected


def test_unknown_arch_is_named(getvar_defaults):
    values = {**getvar_defaults, "TARGET_ARCH": "xtensa", "PYUPDATE_UBOOT_MKIMAGE_ARCH": ""}
    msg = problem(values)
    assert msg is not None and msg.startswith("PYUPDATE_UBOOT_MKIMAGE_ARCH: no mkimage -A name")
    assert "'xtensa'" in msg


def test_setup_class_derives_the_mkimage_arch_in_one_place():
    setup = (LAYER / "classes" / "pyupdate-setup.bbclass").read_text()
    assert '= "${UBOOT_ARCH}"' not in setup
    assert "pyupdate_layer.board.mkimage_arch(d.getVar('TARGET_ARCH')" in setup
    assert "PYUPDATE_UBOOT_MKIMAGE_ARCH_DEFAULT:" not in setup


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PYUPDATE_FEATURES_ENABLE", "pyupdate-agent pyupdate-uboot pyupdate-grub"),
        ("PYUPDATE_FEATURES_DISABLE", "pyupdate-sytemd"),
    ],
)
def test_unknown_feature_is_named(getvar_defaults, var, value):
    msg = problem({**getvar_defaults, var: value})
    assert msg is not None and msg.startswith(f"{var}: ")
    assert "is not a feature (known: pyupdate-agent," in msg


def test_features_are_enable_minus_disable():
    values = {
        "PYUPDATE_FEATURES_ENABLE": "pyupdate-systemd pyupdate-agent pyupdate-image",
        "PYUPDATE_FEATURES_DISABLE": "pyupdate-systemd",
    }
    assert features.enabled(values.get) == "pyupdate-agent pyupdate-image"


def test_sysvinit_with_the_systemd_feature_is_refused(getvar_defaults):
    values = {
        **getvar_defaults,
        "INIT_MANAGER": "sysvinit",
        "DISTRO_FEATURES": "acl ipv4 sysvinit pyupdate",
    }
    msg = problem(values)
    assert msg is not None and msg.startswith(
        "INIT_MANAGER: 'sysvinit': the agent's unit needs systemd"
    )
    assert 'PYUPDATE_FEATURES_DISABLE += "pyupdate-systemd"' in msg
    without_unit = {**values, "PYUPDATE_FEATURES": ALL.replace(" pyupdate-systemd", "")}
    assert problem(without_unit) is None


@pytest.mark.parametrize(
    ("var", "value", "fixed"),
    [
        ("PYUPDATE_STORAGE_DEVICE", "/dev/vda", "/dev/mmcblk0"),
        ("PYUPDATE_UBOOT_INTERFACE", "virtio", "mmc"),
    ],
)
def test_qemu_defaults_on_a_real_machine_are_named(getvar_defaults, var, value, fixed):
    board_values = {
        **getvar_defaults,
        "MACHINE": "raspberrypi4-64",
        "MACHINEOVERRIDES": "aarch64:armv8a:rpi:raspberrypi4-64",
        "PYUPDATE_STORAGE_DEVICE": "/dev/mmcblk0",
        "PYUPDATE_UBOOT_INTERFACE": "mmc",
        var: value,
    }
    msg = problem(board_values)
    assert msg is not None and msg.startswith(f"{var}: ")
    assert "'raspberrypi4-64' is not a QEMU machine" in msg
    assert problem({**board_values, var: fixed}) is None


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PYUPDATE_SERVER_URL", "updates.example.com"),
        ("PYUPDATE_SERVER_URL", "https://a b"),
        ("PYUPDATE_SERVER_CERT", "/nonexistent/server.crt"),
        ("PYUPDATE_TENANT_TOKEN", "two words"),
    ],
)
def test_bad_server_settings_are_named(getvar_defaults, var, value):
    msg = problem({**getvar_defaults, var: value})
    assert msg is not None and msg.startswith(f"{var}: ")


def test_image_rootfs_size_bigger_than_a_slot_is_refused(getvar_defaults):
    image = {
        **getvar_defaults,
        "PN": "core-image-minimal",
        "IMAGE_ROOTFS_SIZE": str(431 * 1024),
        "IMAGE_ROOTFS_EXTRA_SPACE": "0",
    }
    assert checks.image_problem(image.get) is None
    msg = checks.image_problem({**image, "IMAGE_ROOTFS_SIZE": "600000"}.get)
    assert msg is not None
    assert msg.startswith(
        "PYUPDATE_ROOTFS_PART_SIZE_MB: a slot is 441344 KiB, less than IMAGE_ROOTFS_SIZE"
    )
    msg = checks.image_problem({**image, "IMAGE_ROOTFS_EXTRA_SPACE": "1024"}.get)
    assert msg is not None and "IMAGE_ROOTFS_EXTRA_SPACE 1024 KiB" in msg


def test_initramfs_image_is_never_updatable(getvar_defaults):
    image = {
        **getvar_defaults,
        "PN": "core-image-minimal-initramfs",
        "INITRAMFS_IMAGE": "core-image-minimal-initramfs",
        "IMAGE_ROOTFS_SIZE": "8192",
    }
    msg = checks.image_problem(image.get)
    assert msg is not None and msg.startswith(
        "PYUPDATE_UPDATABLE_IMAGE: core-image-minimal-initramfs"
    )


UBOOT_FAT_ENV = 'CONFIG_ENV_IS_IN_FAT=y\nCONFIG_ENV_SIZE=0x40000\nCONFIG_ENV_FAT_FILE="uboot.env"\n'


def test_uboot_env_size_must_match_when_u_boot_keeps_an_env():
    msg = checks.uboot_config_problem(UBOOT_FAT_ENV, "0x4000", ".config")
    assert msg == (
        "PYUPDATE_UBOOT_ENV_SIZE: 0x4000, but .config keeps its env in FAT with "
        'CONFIG_ENV_SIZE=0x40000 (set PYUPDATE_UBOOT_ENV_SIZE = "0x40000", or turn '
        "CONFIG_ENV_IS_IN_FAT off)"
    )
    assert checks.uboot_config_problem(UBOOT_FAT_ENV, "0x40000") is None


def test_uboot_env_nowhere_leaves_the_size_to_the_boot_script():
    """pyupdate-env-nowhere.cfg applied: U-Boot's own size does not matter."""
    config = "CONFIG_ENV_IS_NOWHERE=y\n# CONFIG_ENV_IS_IN_FAT is not set\nCONFIG_ENV_SIZE=0x40000\n"
    assert checks.uboot_config_problem(config, "0x4000") is None
