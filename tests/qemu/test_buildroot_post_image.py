"""Buildroot's post-image script on the Debian-built rootfs, and the disk it writes boots.

buildroot-ext/board/<board>/post-image.sh is what a Buildroot user runs after
every build; here it gets the same rootfs tree the other scenarios use, and the
disk.img it writes (genimage layout, pyupdate-image slot, boot script and env)
must boot through U-Boot into slot A, with the agent naming the artifact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import images
from qemu_device import Session

from pyupdate_host.qemutest.machine import (
    BootStrategy,
    DiskImage,
    QemuDriver,
    ShellDriver,
    State,
)

REPO = Path(__file__).resolve().parents[2]
BOARD_DIRS = {"qemu-x86_64": "qemu_x86_64", "qemu-aarch64": "qemu_aarch64"}


def test_post_image_disk_boots_slot_a(qemu_session: Session, tmp_path: Path) -> None:
    board = qemu_session.images.board
    arch = images.inputs.BOARD_ARCH[board.name]
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        wheels = sorted((qemu_session.work / "wheels").glob("*.whl"))
        images.compose_tree(arch, board, tree, wheels, qemu_session.images.verify_key, broken=False)
        out = tmp_path / "binaries"
        out.mkdir()
        board_config = REPO / f"artifact_tool/host/src/pyupdate_host/image/boards/{board.name}.json"
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYUPDATE_BOARD": str(board_config),
            "PYUPDATE_ROOTFS": str(tree),
            "PYUPDATE_ARTIFACT_NAME": "br-1",
            "PYUPDATE_SIGNING_KEY": str(qemu_session.images.key),
        }
        script = REPO / "buildroot-ext/board" / BOARD_DIRS[board.name] / "post-image.sh"
        started = time.monotonic()
        done = subprocess.run(
            [str(script), str(out)], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        print(f"post-image.sh: {time.monotonic() - started:.0f} s")
    assert (out / "br-1.mender").is_file()

    power = QemuDriver(board, DiskImage(out / "disk.img"), tmp_path / "console.log")
    strategy = BootStrategy(power, ShellDriver(power))
    try:
        strategy.transition(State.SHELL)
        shell = strategy.shell
        assert shell.check("findmnt -n -o SOURCE /").strip() == board.linux_partition(2)
        assert shell.check("pyupdate show-artifact").strip() == "br-1"
        # the bootstrap artifact waits in the agent's data dir for its first start
        bootstrap = "/var/lib/pyupdate/bootstrap.mender"
        assert shell.check(f"test -s {bootstrap} && echo there").strip() == "there"
        assert "mender_boot_part=2" in shell.check("fw_printenv mender_boot_part")
    finally:
        power.off()
