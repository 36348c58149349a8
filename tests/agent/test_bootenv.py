"""bootenv/: every backend's operations on env files, with the real fw_printenv/fw_setenv
and grub-editenv; the bootloader between runs is pyupdate_testing.bootloader_sim (docs/boot-env.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyupdate_agent.bootenv import BootEnv, BootState, GrubEnv, UBootEnv, open_bootenv
from pyupdate_agent.config import Config
from pyupdate_agent.errors import BootEnvError
from pyupdate_agent.slots import Slot, slots_from_config
from pyupdate_testing.bootloader_sim import grub_boot, uboot_boot
from pyupdate_testing.host_device import HostDevice

pytestmark = pytest.mark.uboot


def host_slots(host: HostDevice) -> tuple[Slot, Slot]:
    return slots_from_config(Config(rootfs_part_a=str(host.slot_a), rootfs_part_b=str(host.slot_b)))


@dataclass
class Board:
    """A backend on a host device, the bootloader's power-on, and the log of the writes
    (GRUB's also holds the bootloader's own: bootloader_sim.py uses grub-editenv too)."""

    env: BootEnv
    a: Slot
    b: Slot
    power_on: Callable[[], int]
    log: Path

    def writes(self) -> list[str]:
        """What the backend wrote, one entry per write, in order."""
        text = self.log.read_text() if self.log.exists() else ""
        return [w for w in text.split("---\n") if w]


def uboot_board(host: HostDevice, tmp_path: Path) -> Board:
    """U-Boot whose fw_setenv (BootUtilitiesSetActivePart) logs each script it is given."""
    log, cfg = tmp_path / "writes", host.fw_env_config
    wrapper = tmp_path / "fw_setenv"
    wrapper.write_text(
        f'#!/bin/sh\ntee -a {log} | fw_setenv -c {cfg} "$@"\nrc=$?\necho --- >> {log}\nexit $rc\n'
    )
    wrapper.chmod(0o755)
    config = Config(
        rootfs_part_a=str(host.slot_a),
        rootfs_part_b=str(host.slot_b),
        bootloader="uboot",
        boot_utilities_get=f"fw_printenv -c {cfg}",
        boot_utilities_set=str(wrapper),
    )
    env = open_bootenv(config)
    a, b = host_slots(host)
    return Board(env, a, b, lambda: uboot_boot(cfg, a.number, b.number), log)


def grub_board(host: HostDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Board:
    """GRUB whose grub-editenv (first on PATH) logs the variables of each `set`."""
    if shutil.which("grub-editenv") is None:
        pytest.skip("needs grub-editenv (grub-common)")
    log, bindir = tmp_path / "writes", tmp_path / "bin"
    bindir.mkdir()
    real = shutil.which("grub-editenv")
    (bindir / "grub-editenv").write_text(
        "#!/bin/sh\n"
        f'if [ "$2" = set ]; then f=$1; shift 2; printf "%s\\n" "$@" >> {log};'
        f' echo --- >> {log}; set -- "$f" set "$@"; fi\n'
        f'exec {real} "$@"\n'
    )
    (bindir / "grub-editenv").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    env = open_bootenv(
        Config(
            rootfs_part_a=str(host.slot_a),
            rootfs_part_b=str(host.slot_b),
            bootloader="grub",
            grub_env_file=str(host.grubenv),
        )
    )
    a, b = host_slots(host)
    return Board(env, a, b, lambda: grub_boot(host.grubenv, a.number, b.number), log)


@pytest.fixture(params=["uboot", "grub"])
def board(request, host: HostDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Board:
    return (
        uboot_board(host, tmp_path)
        if request.param == "uboot"
        else grub_board(host, tmp_path, monkeypatch)
    )


def test_fresh_env_boots_slot_a_confirmed(board: Board):
    assert board.env.state() == BootState(primary=board.a, booted=board.a, trial=False)


def test_start_trial_boots_the_new_slot_at_the_next_power_on(board: Board):
    board.env.start_trial(board.b)
    # not started yet: slot A still runs
    assert board.env.state() == BootState(primary=board.b, booted=board.a, trial=True)
    assert board.power_on() == board.b.number
    assert board.env.state() == BootState(primary=board.b, booted=board.b, trial=True)
    assert not board.env.state().fell_back(board.b)


def test_confirm_keeps_the_new_slot(board: Board):
    board.env.start_trial(board.b)
    board.power_on()
    board.env.confirm(board.b)
    assert board.env.state() == BootState(primary=board.b, booted=board.b, trial=False)
    assert not board.env.state().fell_back(board.b)
    assert board.power_on() == board.b.number
    assert board.power_on() == board.b.number


def test_confirm_again_writes_nothing(board: Board):
    """A commit resumed after a power cut finds it done."""
    board.env.start_trial(board.b)
    board.power_on()
    board.env.confirm(board.b)
    writes = board.writes()
    board.env.confirm(board.b)
    assert board.writes() == writes


def test_confirm_of_a_slot_not_booted_next_is_refused(board: Board):
    with pytest.raises(BootEnvError, match=rf"^{board.env.name}: cannot confirm slot B"):
        board.env.confirm(board.b)
    assert board.writes() == []


def test_cancel_goes_back_to_the_old_slot(board: Board):
    board.env.start_trial(board.b)
    board.power_on()
    board.env.cancel(board.a)
    assert board.env.state() == BootState(primary=board.a, booted=board.a, trial=False)
    assert board.power_on() == board.a.number


def test_cancel_before_the_trial_boot(board: Board):
    board.env.start_trial(board.b)
    board.env.cancel(board.a)
    assert board.power_on() == board.a.number
    assert board.env.state().trial is False


def test_trial_that_does_not_come_up_falls_back(board: Board):
    board.env.start_trial(board.b)
    assert board.power_on() == board.b.number
    assert not board.env.state().fell_back(board.b)
    # the new system never confirms: the board resets and the bootloader gives up
    assert board.power_on() == board.a.number
    state = board.env.state()
    assert state == BootState(primary=board.a, booted=board.a, trial=False)
    assert state.fell_back(board.b)


def test_each_operation_is_one_write_of_menders_variables(board: Board):
    """What fw_setenv / grub-editenv are given, byte for byte (docs/boot-env.md)."""
    board.env.start_trial(board.b)
    board.env.confirm(board.b)
    board.env.cancel(board.a)
    trial, confirm, cancel = board.writes()
    assert trial == "mender_boot_part=3\nmender_boot_part_hex=3\nupgrade_available=1\nbootcount=0\n"
    assert confirm == "upgrade_available=0\n"
    assert (
        cancel == "mender_boot_part=2\nmender_boot_part_hex=2\nupgrade_available=0\nbootcount=0\n"
    )


def test_bad_boot_part_names_the_backend(board: Board):
    board.env.write({"mender_boot_part": "7"})  # type: ignore[attr-defined]
    with pytest.raises(BootEnvError, match=rf"^{board.env.name}: mender_boot_part: .*neither"):
        board.env.state()


# -- the key-value layer under the operations ---------------------------------------


def test_uboot_reads_the_env(host: HostDevice):
    env = UBootEnv(host_slots(host), str(host.fw_env_config)).read()
    assert env["mender_boot_part"] == "2"
    assert env["altbootcmd"] == "run mender_altbootcmd; run bootcmd"


def test_uboot_write_is_one_script_and_reads_back(host: HostDevice):
    before = (host.root / "env.a").read_bytes(), (host.root / "env.b").read_bytes()
    UBootEnv(host_slots(host), str(host.fw_env_config)).start_trial(host_slots(host)[1])
    after = (host.root / "env.a").read_bytes(), (host.root / "env.b").read_bytes()
    # redundant env: exactly one copy was rewritten (the other is the fallback)
    assert sum(b != a for a, b in zip(before, after, strict=True)) == 1
    env = host.env()
    assert (env["mender_boot_part"], env["upgrade_available"]) == ("3", "1")


def test_uboot_values_with_spaces_survive(host: HostDevice):
    UBootEnv(host_slots(host), str(host.fw_env_config)).write({"bootargs": "console=ttyS0 quiet"})
    assert host.env()["bootargs"] == "console=ttyS0 quiet"


def test_uboot_refuses_names_that_would_be_misparsed(host: HostDevice):
    with pytest.raises(BootEnvError, match="refusing"):
        UBootEnv(host_slots(host), str(host.fw_env_config)).write({"a b": "1"})


def test_uboot_missing_config_is_one_line_error(host: HostDevice, tmp_path: Path):
    with pytest.raises(BootEnvError, match=r"^uboot: fw_printenv -c .* failed"):
        UBootEnv(host_slots(host), str(tmp_path / "none.config")).state()


def test_uboot_boot_utilities_override_commands(host: HostDevice, tmp_path: Path):
    log = tmp_path / "calls"
    for name, tool in (("get", "fw_printenv"), ("set", "fw_setenv")):
        wrapper = tmp_path / name
        wrapper.write_text(
            f'#!/bin/sh\necho {tool} >> {log}\nexec {tool} -c {host.fw_env_config} "$@"\n'
        )
        wrapper.chmod(0o755)
    env = open_bootenv(
        Config(
            rootfs_part_a=str(host.slot_a),
            rootfs_part_b=str(host.slot_b),
            boot_utilities_get=str(tmp_path / "get"),
            boot_utilities_set=str(tmp_path / "set"),
        )
    )
    env.start_trial(host_slots(host)[1])
    assert log.read_text().split() == ["fw_setenv", "fw_printenv"]


def test_uboot_canary_mismatch_is_refused(host: HostDevice):
    subprocess.run(
        ["fw_setenv", "-c", str(host.fw_env_config), "-s", "-"],
        input="mender_check_saveenv_canary=1\n",
        text=True,
        check=True,
    )
    with pytest.raises(BootEnvError, match="canary"):
        UBootEnv(host_slots(host), str(host.fw_env_config)).state()


def test_grub_write_replaces_file_atomically(host: HostDevice):
    env = GrubEnv(host_slots(host), str(host.grubenv))
    inode = host.grubenv.stat().st_ino
    env.start_trial(host_slots(host)[1])
    assert host.grubenv.stat().st_ino != inode  # renamed over, never edited in place
    assert host.grubenv.stat().st_size == 1024
    assert env.read()["upgrade_available"] == "1"
    assert not host.grubenv.with_name("grubenv.new").exists()


def test_grub_missing_file_is_an_error(host: HostDevice, tmp_path: Path):
    with pytest.raises(BootEnvError, match=r"grub: .* does not exist"):
        GrubEnv(host_slots(host), str(tmp_path / "grubenv")).state()
