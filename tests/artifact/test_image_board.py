"""Board configs: shipped boards validate, bad ones fail with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyupdate_host.image.board import load_board, shipped_boards
from pyupdate_host.image.cli import main
from pyupdate_host.image.errors import BoardConfigError


def _raw(name: str = "qemu-x86_64") -> dict:
    from importlib import resources

    path = resources.files("pyupdate_host.image").joinpath("boards", f"{name}.json")
    return json.loads(path.read_text())


def _write(tmp_path: Path, raw: dict, name: str = "board.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(raw))
    return path


def test_shipped_boards_are_the_two_qemu_machines():
    assert shipped_boards() == ["qemu-aarch64", "qemu-x86_64"]


@pytest.mark.parametrize("name", ["qemu-x86_64", "qemu-aarch64"])
def test_shipped_board_loads_with_schema_defaults(name):
    board = load_board(name)
    assert board.name == name
    assert board.env.offsets == (0, 0)
    assert board.linux_partition(3) == "/dev/vda3"


def test_x86_board_uses_the_32bit_uboot_and_high_ramdisk():
    board = load_board("qemu-x86_64")
    assert board.uboot.binary == "/usr/lib/u-boot/qemu-x86/u-boot.rom"
    assert board.uboot.ramdisk_addr_r == "0x10000000"
    assert board.qemu.machine == "pc"


def test_missing_field_is_named(tmp_path):
    raw = _raw()
    del raw["uboot"]["binary"]
    with pytest.raises(BoardConfigError, match=r"uboot\.binary: required field is missing"):
        load_board(str(_write(tmp_path, raw)))


def test_wrong_type_is_named(tmp_path):
    raw = _raw()
    raw["partitions"]["rootfs_mib"] = "big"
    with pytest.raises(BoardConfigError, match=r"partitions\.rootfs_mib: 'big' is not of type"):
        load_board(str(_write(tmp_path, raw)))


def test_bad_env_size_pattern_is_named(tmp_path):
    raw = _raw()
    raw["env"]["size"] = "16384"
    with pytest.raises(BoardConfigError, match=r"env\.size"):
        load_board(str(_write(tmp_path, raw)))


def test_unknown_key_is_refused(tmp_path):
    raw = _raw()
    raw["qemu"]["machnie"] = "pc"
    with pytest.raises(BoardConfigError, match=r"qemu: Additional properties.*machnie"):
        load_board(str(_write(tmp_path, raw)))


def test_toml_board_is_accepted(tmp_path):
    toml = """version = 1
name = "t"
arch = "x86_64"
device_type = "t"
[qemu]
binary = "qemu-system-x86_64"
machine = "pc"
[uboot]
binary = "/u-boot.rom"
mkimage_arch = "x86"
boot_command = "zboot"
interface = "virtio"
device = 0
ramdisk_addr_r = "0x10000000"
scratch_addr = "0x7100000"
[storage]
linux_device = "/dev/vda"
[partitions]
boot_mib = 16
rootfs_mib = 16
data_mib = 8
[env]
size = "0x2000"
files = ["a.env", "b.env"]
mount_point = "/boot/uboot"
[kernel]
image = "/boot/vmlinuz"
initrd = "/boot/initrd.img"
bootargs = "console=ttyS0"
"""
    path = tmp_path / "t.toml"
    path.write_text(toml)
    board = load_board(str(path))
    assert board.env.size == 0x2000
    assert board.data_mount_point == "/data"


def test_cli_check_board_prints_one_error_line(tmp_path, capsys):
    raw = _raw()
    del raw["kernel"]
    rc = main(["check-board", "--board", str(_write(tmp_path, raw))])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1
    assert "kernel: required field is missing" in err


def test_cli_unknown_shipped_board_lists_the_known_ones(capsys):
    assert main(["check-board", "--board", "raspberrypi9"]) == 2
    assert "known: qemu-aarch64, qemu-x86_64" in capsys.readouterr().err


def test_cli_invalid_json_is_one_line(tmp_path, capsys):
    path = tmp_path / "b.json"
    path.write_text("{nope")
    assert main(["check-board", "--board", str(path)]) == 2
    assert "not valid json" in capsys.readouterr().err
