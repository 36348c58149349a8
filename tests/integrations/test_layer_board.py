"""meta-pyupdate/lib/pyupdate_layer/board.py: bitbake variables -> pyupdate-image board and agent config.

The board file the u-boot and libubootenv bbappends hand to pyupdate-image
is checked here by pyupdate-image itself (schema, render, fw_env check), so
a variable the layer maps wrongly fails in CI, not in a 2-hour Yocto build.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from integrations_helpers import run
from pyupdate_layer import board

from pyupdate_agent.config import parse_config
from pyupdate_host.image import board as image_board
from pyupdate_host.image.cli import main as image_main

AARCH64 = {
    "MACHINE": "qemuarm64",
    "TARGET_ARCH": "aarch64",
    "UBOOT_BINARY": "u-boot.bin",
    "PYUPDATE_DEVICE_TYPE": "qemuarm64",
    "PYUPDATE_UBOOT_BOOT_COMMAND": "booti",
    "PYUPDATE_UBOOT_MKIMAGE_ARCH": "arm64",
    "PYUPDATE_UBOOT_KERNEL_ADDR": "0x40400000",
    "PYUPDATE_UBOOT_RAMDISK_ADDR": "0x44000000",
    "PYUPDATE_UBOOT_SCRATCH_ADDR": "0x4f000000",
    "PYUPDATE_KERNEL_IMAGE": "/boot/Image",
    "PYUPDATE_KERNEL_BOOTARGS": "rw console=ttyAMA0,115200 panic=5",
}


@pytest.mark.parametrize(
    ("consoles", "expected"),
    [
        ("115200;ttyS0 115200;ttyS1", "console=ttyS0,115200"),
        ("115200;ttyAMA0 115200;hvc0", "console=ttyAMA0,115200"),
        ("", ""),
        ("ttyS0", ""),
    ],
)
def test_console_bootarg_takes_the_first_serial_console(consoles, expected):
    assert board.console_bootarg(consoles) == expected


@pytest.mark.parametrize("overrides", [{}, AARCH64], ids=["qemux86-64", "qemuarm64"])
def test_board_config_passes_the_image_tool_schema(getvar_defaults, tmp_path: Path, overrides):
    values = {**getvar_defaults, **overrides}
    path = tmp_path / "pyupdate-board.json"
    board.write_board(values.get, str(path))
    loaded = image_board.load_board(str(path))
    assert loaded.device_type == values["PYUPDATE_DEVICE_TYPE"]
    assert loaded.partitions.rootfs_mib == 431
    assert loaded.env.size == 0x4000
    assert loaded.uboot.binary.endswith(values["UBOOT_BINARY"])
    assert loaded.kernel.image == values["PYUPDATE_KERNEL_IMAGE"]


def test_empty_kernel_addr_leaves_u_boot_its_own(getvar_defaults):
    assert "kernel_addr_r" not in board.board_config(getvar_defaults.get)["uboot"]


@pytest.mark.uboot
@pytest.mark.parametrize("overrides", [{}, AARCH64], ids=["qemux86-64", "qemuarm64"])
def test_u_boot_bbappend_commands_render_from_the_board(getvar_defaults, tmp_path: Path, overrides):
    """The exact pyupdate-image calls of u-boot-pyupdate.inc and libubootenv-pyupdate.inc."""
    values = {**getvar_defaults, **overrides}
    path = tmp_path / "pyupdate-board.json"
    board.write_board(values.get, str(path))
    out = tmp_path / "pyupdate"
    assert image_main(["check-board", "--board", str(path)]) == 0
    assert image_main(["boot-script", "--board", str(path), "--out", str(out)]) == 0
    assert image_main(["env-image", "--board", str(path), "--out", str(out)]) == 0
    assert image_main(["check-fw-env", "--board", str(path), str(out / "fw_env.config")]) == 0
    for name in ("boot.scr", "uboot.env", "uboot-redund.env"):  # PYUPDATE_IMAGE_BOOT_FILES
        assert (out / name).stat().st_size > 0
    assert "/boot/uboot/uboot.env 0x0 0x4000" in (out / "fw_env.config").read_text()
    # the real fw_printenv reads the env the bbappend deploys
    cfg = tmp_path / "local.config"
    cfg.write_text(f"{out / 'uboot.env'} 0x0 0x4000\n{out / 'uboot-redund.env'} 0x0 0x4000\n")
    env = run(["fw_printenv", "-c", str(cfg)])
    assert env.returncode == 0, env.stderr
    assert "mender_boot_part=2" in env.stdout
    boot_cmd = (out / "boot.cmd").read_text()
    assert values["PYUPDATE_UBOOT_BOOT_COMMAND"] in boot_cmd
    assert values["PYUPDATE_KERNEL_BOOTARGS"] in boot_cmd


@pytest.mark.uboot
def test_user_fw_env_config_with_wrong_size_is_refused(getvar_defaults, tmp_path: Path, capsys):
    path = tmp_path / "pyupdate-board.json"
    board.write_board(getvar_defaults.get, str(path))
    user = tmp_path / "fw_env.config"
    user.write_text("/boot/uboot/uboot.env 0x0 0x2000\n/boot/uboot/uboot-redund.env 0x0 0x2000\n")
    assert image_main(["check-fw-env", "--board", str(path), str(user)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "env size 0x2000" in err


def test_agent_config_is_read_by_the_agent(getvar_defaults):
    values = {
        **getvar_defaults,
        "PYUPDATE_SERVER_URL": "https://updates.example.com",
        "PYUPDATE_ARTIFACT_VERIFY_KEY": "/keys/public.pem",
        "PYUPDATE_STORAGE_DEVICE": "/dev/mmcblk0",
        "PYUPDATE_STORAGE_PART_SEPARATOR": "p",
    }
    config = parse_config(json.dumps(board.agent_config(values.get)), "pyupdate.conf")
    assert (config.rootfs_part_a, config.rootfs_part_b) == ("/dev/mmcblk0p2", "/dev/mmcblk0p3")
    assert config.server_url == "https://updates.example.com"
    assert config.artifact_verify_keys == ("/etc/pyupdate/artifact-verify-key.pem",)
    assert config.fw_env_config == "/etc/fw_env.config"
    assert config.update_poll_interval_seconds == 1800


def test_agent_config_without_server_is_standalone(getvar_defaults):
    conf = board.agent_config(getvar_defaults.get)
    assert "ServerURL" not in conf and "ArtifactVerifyKey" not in conf
