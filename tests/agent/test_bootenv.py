"""bootenv/: the real fw_printenv/fw_setenv and grub-editenv on env files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from agent_host import HostDevice

from pyupdate_agent.bootenv import GrubEnv, UBootEnv, open_bootenv
from pyupdate_agent.config import Config
from pyupdate_agent.errors import BootEnvError

pytestmark = pytest.mark.uboot


def test_uboot_reads_the_env(host: HostDevice):
    env = UBootEnv(str(host.fw_env_config)).read()
    assert env["mender_boot_part"] == "2"
    assert env["altbootcmd"] == "run mender_altbootcmd; run bootcmd"


def test_uboot_write_is_one_script_and_reads_back(host: HostDevice):
    before = (host.root / "env.a").read_bytes(), (host.root / "env.b").read_bytes()
    UBootEnv(str(host.fw_env_config)).write(
        {"mender_boot_part": "3", "mender_boot_part_hex": "3", "upgrade_available": "1"}
    )
    after = (host.root / "env.a").read_bytes(), (host.root / "env.b").read_bytes()
    # redundant env: exactly one copy was rewritten (the other is the fallback)
    assert sum(b != a for a, b in zip(before, after, strict=True)) == 1
    env = host.env()
    assert (env["mender_boot_part"], env["upgrade_available"]) == ("3", "1")


def test_uboot_values_with_spaces_survive(host: HostDevice):
    UBootEnv(str(host.fw_env_config)).write({"bootargs": "console=ttyS0 quiet"})
    assert host.env()["bootargs"] == "console=ttyS0 quiet"


def test_uboot_refuses_names_that_would_be_misparsed(host: HostDevice):
    with pytest.raises(BootEnvError, match="refusing"):
        UBootEnv(str(host.fw_env_config)).write({"a b": "1"})


def test_uboot_missing_config_is_one_line_error(tmp_path: Path):
    with pytest.raises(BootEnvError, match=r"^uboot: fw_printenv -c .* failed"):
        UBootEnv(str(tmp_path / "none.config")).read()


def test_uboot_boot_utilities_override_commands(host: HostDevice, tmp_path: Path):
    log = tmp_path / "calls"
    for name, tool in (("get", "fw_printenv"), ("set", "fw_setenv")):
        wrapper = tmp_path / name
        wrapper.write_text(
            f'#!/bin/sh\necho {tool} >> {log}\nexec {tool} -c {host.fw_env_config} "$@"\n'
        )
        wrapper.chmod(0o755)
    env = open_bootenv(
        Config(boot_utilities_get=str(tmp_path / "get"), boot_utilities_set=str(tmp_path / "set"))
    )
    env.write({"upgrade_available": "1"})
    assert log.read_text().split() == ["fw_setenv", "fw_printenv"]


def test_uboot_canary_mismatch_is_refused(host: HostDevice):
    subprocess.run(
        ["fw_setenv", "-c", str(host.fw_env_config), "-s", "-"],
        input="mender_check_saveenv_canary=1\n",
        text=True,
        check=True,
    )
    with pytest.raises(BootEnvError, match="canary"):
        UBootEnv(str(host.fw_env_config)).read()


def test_grub_write_replaces_file_atomically(host: HostDevice):
    env = GrubEnv(str(host.grubenv))
    inode = host.grubenv.stat().st_ino
    env.write({"mender_boot_part": "3", "upgrade_available": "1", "bootcount": "0"})
    assert host.grubenv.stat().st_ino != inode  # renamed over, never edited in place
    assert host.grubenv.stat().st_size == 1024
    assert env.read()["upgrade_available"] == "1"
    assert not host.grubenv.with_name("grubenv.new").exists()


def test_grub_missing_file_is_an_error(tmp_path: Path):
    with pytest.raises(BootEnvError, match=r"grub: .* does not exist"):
        GrubEnv(str(tmp_path / "grubenv")).read()
