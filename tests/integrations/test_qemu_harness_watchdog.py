"""The QEMU harness's board watchdog (pyupdate_host/qemutest/machine.py), on a machine that hangs on purpose.

A script stands in for qemu-system-*: it ignores QEMU's arguments and plays one
console script per power-on (a hang is a long sleep). The watchdog must reset a
machine hung in firmware or in its shutdown, record each reset, and leave a
machine that hangs while it runs alone: that is a failure for the test to see.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pyupdate_host.image.board import load_board
from pyupdate_host.qemutest.machine import BOOT_SCRIPT, DiskImage, QemuDriver

HANG = "exec sleep 600"
BOOT = f'echo "{BOOT_SCRIPT} (fake) ==="'
SHUTDOWN = r'printf "[  OK  ] Stopped target \033[0;1;39mgraphical.target\033[0m - Graphical.\n"'
LOGIN = 'echo "root@pyupdate:~# "'


def _machine(tmp_path: Path, boots: list[list[str]]) -> QemuDriver:
    """A QemuDriver whose Nth power-on runs boots[N] (then hangs)."""
    count = tmp_path / "power-ons"
    count.write_text("0")
    cases = "\n".join(f"  {n}) {'; '.join([*lines, HANG])} ;;" for n, lines in enumerate(boots))
    fake = tmp_path / "fake-qemu"
    fake.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{count}"); echo $((n + 1)) > "{count}"\n'
        f'case "$n" in\n{cases}\n  *) {HANG} ;;\nesac\n'
    )
    fake.chmod(0o755)
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"")
    board = load_board("qemu-x86_64")
    board = dataclasses.replace(board, qemu=dataclasses.replace(board.qemu, binary=str(fake)))
    driver = QemuDriver(board, DiskImage(disk), tmp_path / "console.log")
    driver.watchdog.firmware_window = 3.0
    driver.watchdog.shutdown_window = 3.0
    return driver


def test_a_machine_hung_in_firmware_is_power_cycled_and_the_reset_recorded(tmp_path: Path):
    driver = _machine(
        tmp_path, [["echo U-Boot 2023.01", "echo Loading Environment"], [BOOT, LOGIN]]
    )
    try:
        driver.on()
        assert driver.expect("root@pyupdate", timeout=20) == 0
    finally:
        driver.off()
    [reset] = driver.watchdog.resets
    assert reset.startswith("U-Boot did not reach the boot script")
    assert "Loading Environment" in reset


def test_a_hung_shutdown_is_power_cycled(tmp_path: Path):
    driver = _machine(tmp_path, [[BOOT, LOGIN, SHUTDOWN], [BOOT, LOGIN]])
    try:
        driver.on()
        driver.expect("root@pyupdate", timeout=20)
        driver.expect(BOOT_SCRIPT, timeout=20)
    finally:
        driver.off()
    [reset] = driver.watchdog.resets
    assert reset.startswith("the guest's shutdown did not end in a reset")


def test_a_machine_hung_while_running_is_a_failure_not_a_reset(tmp_path: Path):
    driver = _machine(tmp_path, [[BOOT, LOGIN], [BOOT, LOGIN]])
    try:
        driver.on()
        driver.expect("root@pyupdate", timeout=20)
        with pytest.raises(
            AssertionError,
            match=r"no 'never printed' within 3 s; host disk: \d+ MiB free at .*; last lines:",
        ):
            driver.expect("never printed", timeout=3)
    finally:
        driver.off()
    assert driver.watchdog.resets == []


def test_an_orderly_reset_is_a_power_cycle_not_a_watchdog_reset(tmp_path: Path):
    driver = _machine(tmp_path, [[BOOT, LOGIN, SHUTDOWN, "exit 0"], [BOOT, "echo second boot"]])
    try:
        driver.on()
        driver.expect("second boot", timeout=20)
    finally:
        driver.off()
    assert driver.watchdog.resets == []
    assert driver.log.read_text().count("===== power on") == 2


def test_a_machine_that_never_boots_fails_after_a_few_resets(tmp_path: Path):
    """Every power-on silent (a wrong firmware or CPU): a failure, not resets forever."""
    driver = _machine(tmp_path, [])
    driver.watchdog.firmware_window = 1.0
    try:
        driver.on()
        with pytest.raises(AssertionError, match=r"4 power-ons in a row .*check the firmware"):
            driver.expect("root@pyupdate", timeout=600)
    finally:
        driver.off()
    assert len(driver.watchdog.resets) == 4
    assert driver.log.read_text().count("===== power on") == 4
