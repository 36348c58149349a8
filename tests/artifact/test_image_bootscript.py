"""The boot script, env defaults and fw_env.config come from one template set."""

from __future__ import annotations

import pytest

from pyupdate_host.image.board import load_board
from pyupdate_host.image.bootscript import (
    boot_cmd,
    compile_script,
    env_defaults,
    fw_env_config,
    template_names,
)


def test_one_template_set_for_uboot():
    assert template_names() == ["boot.cmd.j2", "env.txt.j2", "fw_env.config.j2"]


def test_x86_script_uses_zboot_and_literal_addresses_without_setexpr():
    script = boot_cmd(load_board("qemu-x86_64"))
    commands = "\n".join(ln for ln in script.splitlines() if not ln.startswith("#"))
    words = set(commands.split())
    assert "setexpr" not in words and "saveenv" not in words
    assert "zboot ${kernel_addr_r} 0 ${ramdisk_addr_r} ${filesize}" in script
    assert "setenv ramdisk_addr_r 0x10000000" in script
    assert "load ${devtype} ${ab_envpart} 0x7100000 uboot.env" in script
    assert "load ${devtype} ${ab_envpart} 0x7104000 uboot-redund.env" in script
    assert "itest.b *0x7104004 -gt *0x7100004" in script


def test_aarch64_script_uses_booti_and_addresses_in_ram():
    script = boot_cmd(load_board("qemu-aarch64"))
    assert "booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}" in script
    assert "0x4f000000" in script and "0x7100000" not in script


def test_script_implements_mender_rollback_rule():
    script = boot_cmd(load_board("qemu-x86_64"))
    assert 'if test "${upgrade_available}" = "1"; then' in script
    assert "if test ${bootcount} -gt ${bootlimit}; then" in script
    assert "setenv mender_boot_part 3; else setenv mender_boot_part 2" in script
    # a failed kernel load on a trial boot resets, so the next boot rolls back
    assert script.rstrip().endswith("reset; fi")


def test_script_saves_every_mender_variable():
    script = boot_cmd(load_board("qemu-x86_64"))
    export = next(ln for ln in script.splitlines() if "env export" in ln)
    for var in ("mender_boot_part", "mender_boot_part_hex", "upgrade_available", "bootcount"):
        assert f" {var}" in export
    assert "-s 0x3fff" in export


def test_env_defaults_boot_slot_a_committed():
    env = env_defaults(load_board("qemu-x86_64"))
    assert "mender_boot_part=2\n" in env
    assert "upgrade_available=0\n" in env
    assert "bootlimit=1\n" in env


def test_fw_env_config_lists_both_copies_at_board_size():
    text = fw_env_config(load_board("qemu-x86_64"))
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines == [
        "/boot/uboot/uboot.env 0x0 0x4000",
        "/boot/uboot/uboot-redund.env 0x0 0x4000",
    ]


@pytest.mark.uboot
def test_mkimage_compiles_the_script(tmp_path):
    board = load_board("qemu-x86_64")
    (tmp_path / "boot.cmd").write_text(boot_cmd(board))
    compile_script(board, tmp_path / "boot.cmd", tmp_path / "boot.scr")
    data = (tmp_path / "boot.scr").read_bytes()
    assert data[:4] == b"\x27\x05\x19\x56"  # legacy U-Boot image magic
    assert b"pyupdate boot.scr start" in data
