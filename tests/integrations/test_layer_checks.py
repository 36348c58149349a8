"""meta-pyupdate/lib/pyupdate_layer/checks.py: the parse-time checks, one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from integrations_helpers import LAYER
from pyupdate_layer import checks

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
    values = {**getvar_defaults, "PYUPDATE_ARTIFACT_SIGNING_KEY": str(key)}
    assert problem({**values, "PYUPDATE_SIGNING_REQUIRED": "1"}) is None


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
