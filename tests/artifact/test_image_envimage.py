"""Env images are read by the real libubootenv; a mismatched fw_env.config is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pyupdate_host.image.board import load_board
from pyupdate_host.image.bootscript import env_defaults
from pyupdate_host.image.cli import main
from pyupdate_host.image.envimage import (
    check_fw_env_config,
    write_env_images,
    write_fw_env_config,
)
from pyupdate_host.image.errors import EnvConfigError


def _local_config(tmp_path: Path, size: str = "0x4000") -> Path:
    cfg = tmp_path / "fw_env.config"
    cfg.write_text(f"{tmp_path}/uboot.env 0x0 {size}\n{tmp_path}/uboot-redund.env 0x0 {size}\n")
    return cfg


def test_written_fw_env_config_passes_the_check(tmp_path):
    board = load_board("qemu-x86_64")
    write_fw_env_config(board, tmp_path / "fw_env.config")
    check_fw_env_config(board, tmp_path / "fw_env.config")


def test_size_mismatch_is_refused_naming_the_line(tmp_path):
    cfg = _local_config(tmp_path, size="0x2000")
    with pytest.raises(EnvConfigError, match=r"fw_env.config:1: env size 0x2000 does not match"):
        check_fw_env_config(load_board("qemu-x86_64"), cfg)


def test_single_copy_config_is_refused(tmp_path):
    cfg = tmp_path / "fw_env.config"
    cfg.write_text("/boot/uboot/uboot.env 0x0 0x4000\n")
    with pytest.raises(EnvConfigError, match="1 env copies"):
        check_fw_env_config(load_board("qemu-x86_64"), cfg)


def test_cli_check_fw_env_exits_2_with_one_line(tmp_path, capsys):
    cfg = _local_config(tmp_path, size="0x20000")
    assert main(["check-fw-env", "--board", "qemu-x86_64", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "env.size 0x4000" in err


@pytest.mark.uboot
def test_env_images_round_trip_through_fw_setenv(tmp_path):
    board = load_board("qemu-x86_64")
    (tmp_path / "env.txt").write_text(env_defaults(board))
    copies = write_env_images(board, tmp_path / "env.txt", tmp_path)
    assert [p.stat().st_size for p in copies] == [0x4000, 0x4000]
    cfg = _local_config(tmp_path)
    out = subprocess.run(["fw_printenv", "-c", cfg], capture_output=True, text=True, check=True)
    assert "mender_boot_part=2" in out.stdout
    # a trial as the agent writes it: one script, name=value lines
    subprocess.run(
        ["fw_setenv", "-c", cfg, "-s", "-"],
        input="mender_boot_part=3\nmender_boot_part_hex=3\nupgrade_available=1\nbootcount=0\n",
        text=True,
        check=True,
    )
    got = subprocess.run(
        ["fw_printenv", "-c", cfg, "-n", "mender_boot_part"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert got.stdout.strip() == "3"
    # libubootenv wrote the non-current copy (copy 1) with flags + 1; copy 0 is intact
    flags = [p.read_bytes()[4] for p in copies]
    assert flags == [1, 2]


@pytest.mark.uboot
def test_cli_env_image_writes_board_sized_copies(tmp_path, capsys):
    assert main(["env-image", "--board", "qemu-aarch64", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "uboot.env").stat().st_size == 0x4000
    assert (tmp_path / "uboot-redund.env").stat().st_size == 0x4000
