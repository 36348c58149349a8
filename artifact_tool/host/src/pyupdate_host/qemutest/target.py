"""The device under test, as the scenarios see it: a root shell on a board that boots.

Everything a scenario does goes through `Target`: power (on, off = a power
cut), the console (wait for a boot line, send a line) and a shell (run a
command, get its exit code and output). QEMU stands behind it today
(machine.py); a labgrid target with a power driver, a serial console and a
shell can stand in, since the scenarios only use the verbs below. Nothing here
assumes systemd, util-linux or a particular init: Buildroot's BusyBox, Yocto's
and Debian's userlands all answer these commands.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ..image.board import Board
from .machine import BootStrategy, State

MEDIA_LABEL = "pyupdate-test"  # the file system label of the artifacts' disk (media.py)
MEDIA_MOUNT = "/run/pyupdate-test-media"


class Target:
    """A booted board at its root shell. Args: strategy (power, console, shell), board."""

    def __init__(self, strategy: BootStrategy, board: Board) -> None:
        self.strategy = strategy
        self.board = board

    # shell
    def sh(self, cmd: str, timeout: float = 300.0) -> str:
        return self.strategy.shell.check(cmd, timeout)

    def run(self, cmd: str, timeout: float = 300.0) -> tuple[int, str]:
        return self.strategy.shell.run(cmd, timeout)

    # facts
    def env(self) -> dict[str, str]:
        out = self.sh("fw_printenv mender_boot_part upgrade_available bootcount")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def root_part(self) -> str:
        """The root device the boot script chose (`root=` on the kernel command line)."""
        words = self.sh("cat /proc/cmdline").split()
        return next((w[5:] for w in words if w.startswith("root=")), "")

    def slot(self) -> str:
        """'A' or 'B' from the booted root, '?' for anything else."""
        root = self.root_part()
        return {self.board.linux_partition(2): "A", self.board.linux_partition(3): "B"}.get(
            root, "?"
        )

    def mounts(self) -> dict[str, str]:
        """mount point -> device, from /proc/mounts."""
        rows = [line.split() for line in self.sh("cat /proc/mounts").splitlines()]
        return {r[1]: r[0] for r in rows if len(r) > 2}

    def artifact(self) -> str:
        return self.sh("pyupdate show-artifact").strip()

    def mount_media(self) -> str:
        """Mount the disk holding the artifacts (by its label) and return where."""
        quoted = shlex.quote(MEDIA_MOUNT)
        self.sh(
            f"mkdir -p {quoted} && (grep -q ' {MEDIA_MOUNT} ' /proc/mounts || "
            f"mount -o ro LABEL={MEDIA_LABEL} {quoted})"
        )
        return MEDIA_MOUNT

    def media_path(self, artifact: Path) -> str:
        return f"{self.mount_media()}/{artifact.name}"

    # power and console
    def expect(self, pattern: str, timeout: float = 300.0) -> None:
        """Wait for a console line (a regex) during the current boot."""
        self.strategy.power.expect(pattern, timeout)

    def send(self, line: str) -> None:
        """Type a line on the console without waiting for it (power-cut scenarios)."""
        self.strategy.power.sendline(line)

    def reboot(self) -> None:
        """A clean reboot from the shell; returns when the boot script has started."""
        self.strategy.reboot()

    def await_shell(self) -> None:
        self.strategy.await_shell()

    def reboot_to_shell(self) -> None:
        self.reboot()
        self.await_shell()

    def power_cut(self) -> None:
        self.strategy.power_cut()

    def power_on_to_shell(self) -> None:
        self.strategy.transition(State.SHELL)
