"""pyupdate-full's U-Boot and runqemu settings for qemux86-64, against the QEMU harness.

runqemu builds its QEMU command line from the QB_* variables the layer sets,
and the u-boot recipe builds UBOOT_MACHINE. tests/qemu boots artifact_tool's
qemu-x86_64 board: Debian's 32-bit qemu-x86 u-boot.rom on `-M pc` with a
virtio disk. If the two drift apart, the Yocto image stops booting under
runqemu while CI stays green (oe-core's own defaults, qemu-x86_64_defconfig
and q35, are what the layer overrides). The real runqemu run is recorded in
docs/layer-checks.md, "runqemu"; it needs bitbake, so it is a local check.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pexpect
import pytest
from integrations_helpers import LAYER, run, tool
from pyupdate_layer import board as layer_board

from pyupdate_host.image.board import Board, load_board

FULL_CLASS = LAYER / "classes" / "pyupdate-full.bbclass"
SETUP_CLASS = LAYER / "classes" / "pyupdate-setup.bbclass"
ASSIGNMENT = re.compile(
    r'^(?P<name>[A-Z_]+)(?::(?P<override>[\w-]+))?\s*(?:\?\?=|\?=|=)\s*"(?P<value>.*)"$'
)
MACHINE_OVERRIDES = ("qemuall", "qemux86-64")  # MACHINEOVERRIDES of qemux86-64, lowest first


def layer_values(*classes: Path) -> dict[str, str]:
    """What the classes set for qemux86-64; a machine override beats the plain name,
    as in bitbake (qemux86-64 comes after qemuall in OVERRIDES)."""
    plain: dict[str, str] = {}
    overridden: dict[str, dict[str, str]] = {}
    for path in classes:
        for line in path.read_text().splitlines():
            m = ASSIGNMENT.match(line.strip())
            if not m:
                continue
            if m["override"] is None:
                plain[m["name"]] = m["value"]
            elif m["override"] in MACHINE_OVERRIDES:
                overridden.setdefault(m["name"], {})[m["override"]] = m["value"]
    values = dict(plain)
    for name, by_override in overridden.items():
        for override in MACHINE_OVERRIDES:
            if override in by_override:
                values[name] = by_override[override]
    return {
        k: re.sub(r"\$\{(\w+)\}", lambda m: values.get(m[1], m[0]), v) for k, v in values.items()
    }


@pytest.fixture(scope="module")
def layer() -> dict[str, str]:
    return layer_values(SETUP_CLASS, FULL_CLASS)


@pytest.fixture(scope="module")
def harness() -> Board:
    return load_board("qemu-x86_64")


def test_layer_builds_the_u_boot_the_harness_boots(layer: dict[str, str], harness: Board):
    # Debian installs each U-Boot build under its defconfig's name: qemu-x86/u-boot.rom
    rom = Path(harness.uboot.binary)
    assert layer["UBOOT_MACHINE"] == f"{rom.parent.name}_defconfig" == "qemu-x86_defconfig"
    assert layer["UBOOT_BINARY"] == rom.name
    assert layer["QB_DEFAULT_BIOS"] == rom.name


def test_runqemu_boots_the_harness_machine_from_the_wic_disk(layer: dict[str, str], harness: Board):
    assert layer["QB_MACHINE"] == f"-machine {harness.qemu.machine}"
    assert "q35" not in layer["QB_CPU"] and "q35" not in layer["QB_CPU_KVM"]
    # runqemu: QB_DRIVE_TYPE /dev/vd* (but /dev/vdb) -> -drive if=virtio
    assert layer["QB_DRIVE_TYPE"] == "/dev/vd" and harness.qemu.disk_interface == "virtio"
    assert layer["PYUPDATE_STORAGE_DEVICE"] == harness.linux_device == "/dev/vda"
    assert layer["QB_DEFAULT_KERNEL"] == "none" and layer["QB_DEFAULT_FSTYPE"] == "wic"
    # qemu-x86_defconfig: CONFIG_MAX_CPUS=2 (more vCPUs: "MP init failure", resets)
    assert int(layer["QB_SMP"].removeprefix("-smp ")) <= 2


def runqemu_argv(layer: dict[str, str], qemu: str, bios: str, disk: Path) -> list[str]:
    """The machine part of runqemu's command line for these QB_* values
    (scripts/runqemu: setup_final, check_rootfs for /dev/vd, setup_serial, -bios)."""
    return [
        qemu,
        "-drive",
        f"if=virtio,file={disk},format=raw",
        *layer["QB_MACHINE"].split(),
        *layer["QB_CPU"].split(),
        *layer["QB_SMP"].split(),
        "-m",
        "256",  # qemuboot.bbclass's QB_MEM, which the layer keeps
        "-serial",
        "mon:stdio",
        "-serial",
        "null",
        "-nographic",
        "-no-reboot",  # not runqemu's: a reset ends the test instead of looping
        "-accel",
        "tcg",
        "-bios",
        bios,
    ]


@pytest.mark.qemu
@pytest.mark.uboot
@pytest.mark.slow
def test_runqemu_machine_runs_the_layer_boot_script(
    layer: dict[str, str], harness: Board, getvar_defaults: dict[str, str], tmp_path: Path
):
    """Debian's qemu-x86 u-boot.rom, started with the layer's QB_* machine, finds the
    boot.scr and env the u-boot bbappend renders on the layer's A/B disk and tries
    slot A's kernel (the rootfs here has none: the script reports the failed load)."""
    if not Path(harness.uboot.binary).is_file():
        message = f"{harness.uboot.binary} missing (Debian's u-boot-qemu)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    # DEPLOY_DIR_IMAGE as a Yocto build leaves it: the ROM runqemu passes as -bios
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / layer["QB_DEFAULT_BIOS"]).symlink_to(harness.uboot.binary)
    board_file = tmp_path / "pyupdate-board.json"
    values = {**getvar_defaults, "DEPLOY_DIR_IMAGE": str(deploy)}
    layer_board.write_board(values.get, str(board_file))
    rootfs = tmp_path / "rootfs"
    (rootfs / "boot").mkdir(parents=True)
    out = tmp_path / "out"
    build = [tool("pyupdate-image"), "build", "--board", str(board_file), "--out", str(out)]
    built = run([*build, "--rootfs", str(rootfs), "--name", "runqemu-check", "--no-artifacts"])
    assert built.returncode == 0, built.stderr

    bios = str(deploy / layer["QB_DEFAULT_BIOS"])
    argv = runqemu_argv(layer, harness.qemu.binary, bios, out / "disk.img")
    qemu = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", codec_errors="replace")
    qemu.logfile_read = (tmp_path / "console.log").open("w")  # kept by pytest for a failure
    try:
        qemu.expect_exact("=== pyupdate boot.scr start (yocto-qemux86-64) ===", timeout=90)
        qemu.expect_exact("AB: env copy 0 (uboot.env) imported", timeout=30)
        qemu.expect_exact("AB: booting part 2 upgrade_available=0", timeout=30)
        qemu.expect_exact("AB: boot of part 2 failed", timeout=30)
    finally:
        qemu.kill(signal.SIGKILL)
        qemu.close(force=True)
        qemu.logfile_read.close()
