"""meta-pyupdate's own tasks make the image: it boots, updates, commits and rolls back.

ci/yocto/run_tasks.py runs the layer's recorded tasks (boot script and env
images, fw_env.config, the agent's unit and config, state scripts, the fstab
lines, the artifacts of three builds) on the Debian stand-in rootfs, and the
disk comes from the layer's expanded wks. With PYUPDATE_SNAPSHOTS (a dir with
bitbake/ and openembedded-core/) the layer is expanded live and the disk made by
oe-core's wic; without it, from the committed record and ci/yocto/wks.py.
pyupdate-qemu-test then checks the result as a team's CI would, through the
deploy dir's qemuboot.conf: standalone update and commit, and a broken
release that U-Boot rolls back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import record
import run_tasks

from pyupdate_host.image.board import load_board

REPO = Path(__file__).resolve().parents[2]

# The harness board (QEMU settings, Debian's U-Boot) -> the Yocto machine recorded for it.
MACHINES = {"qemu-x86_64": "qemux86-64", "qemu-aarch64": "qemuarm64"}
HARNESS_BOARD = os.environ.get("PYUPDATE_BOARD", "qemu-x86_64")
MACHINE = MACHINES.get(HARNESS_BOARD, "")
TOOL = Path(sys.executable).parent / "pyupdate-qemu-test"


def _record() -> tuple[dict, Path | None]:
    snap = os.environ.get("PYUPDATE_SNAPSHOTS")
    if not snap:
        data = record.load(MACHINE)
        if record.stale(data):
            pytest.fail(record.STALE, pytrace=False)
        return data, None
    import expand

    return expand.expand(Path(snap).resolve(), MACHINE), run_tasks.wic_script(Path(snap))


def _artifact_name(data: dict, build: str) -> str:
    return data["builds"][build]["pyupdate-image-minimal"]["vars"]["PYUPDATE_ARTIFACT_NAME"]


def test_layer_image_boots_updates_commits_and_rolls_back(tmp_path: Path) -> None:
    if not MACHINE:
        pytest.skip(f"no recorded Yocto expansion for {HARNESS_BOARD}")
    data, wic = _record()
    started = time.monotonic()
    try:
        out = run_tasks.build(tmp_path / "yocto", data, run_tasks.stand_in_inputs(MACHINE), wic)
    except run_tasks.LayerDefect as exc:
        pytest.fail(f"layer defect: {exc}", pytrace=False)
    print(
        f"layer tasks and disk ({'wic' if wic else 'wks.py'}): {time.monotonic() - started:.0f} s"
    )
    assert not out.defects, "layer defects:\n" + "\n".join(out.defects)
    first, second = _artifact_name(data, "release-1"), _artifact_name(data, "release-2")
    assert first != second
    # the state scripts the layer installs come with the version file the agent requires
    assert (out.rootfs / "etc/pyupdate/scripts/version").is_file()
    conf = _qemuboot_conf(data, out)
    # the recipes' trees are no longer needed: the deploy dir and the artifacts hold it all
    subprocess.run(["rm", "-rf", str(tmp_path / "yocto/build/tmp/work")], check=True)
    report = tmp_path / "report.xml"
    run = subprocess.run(
        [str(TOOL), "--qemuboot", str(conf), "--scenario", "standalone,rollback",
         "--update", str(out.artifacts["release-2"]), "--broken", str(out.artifacts["broken"]),
         "--junit", str(report), "--logs", str(tmp_path / "logs"), "--quiet"],
        capture_output=True, text=True, timeout=30 * 60,
    )  # fmt: skip
    print(run.stdout)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{report.read_text()}"
    assert f"update: {second}" in run.stdout and first != second


def _qemuboot_conf(data: dict, out: run_tasks.Outputs) -> Path:
    """What oe-core's qemuboot.bbclass writes into the deploy dir, from pyupdate-full's QB_*
    settings for qemux86-64 (machine, BIOS = UBOOT_BINARY, wic, virtio) and the stand-in
    rootfs's memory; the disk where a wic build leaves it."""
    image = data["builds"]["release-1"]["pyupdate-image-minimal"]["vars"]
    uboot = data["builds"]["release-1"]["u-boot"]["vars"]["UBOOT_BINARY"]
    link = image["IMAGE_LINK_NAME"]
    harness = load_board(HARNESS_BOARD).qemu
    shutil.move(out.disk, out.deploy / f"{link}.wic")
    conf = out.deploy / f"{link}.qemuboot.conf"
    conf.write_text(
        "[config_bsp]\n"
        f"deploy_dir_image = .\nimage_link_name = {link}\nmachine = {MACHINE}\n"
        f"qb_system_name = {harness.binary}\nqb_machine = -machine {harness.machine}\n"
        f"qb_mem = -m {harness.memory_mib}\nqb_default_bios = {uboot}\n"
        + (f"qb_cpu = -cpu {harness.cpu}\n" if harness.cpu else "")
        + "qb_default_fstype = wic\nqb_drive_type = /dev/vd\nqb_graphics = \n"
    )
    return conf
