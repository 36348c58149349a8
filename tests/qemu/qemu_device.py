"""The device under test and the session's images, as the scenarios see them.

Kept out of conftest.py so scenario modules import it by a unique name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import images
from strategy import GUEST_HOST_IP, BootStrategy, State

HTTP_GUEST_PORT = 8080


@dataclass(frozen=True, slots=True)
class Session:
    images: images.DeviceImages
    media: Path
    http_port: int
    work: Path

    @property
    def http_base(self) -> str:
        return f"http://{GUEST_HOST_IP}:{HTTP_GUEST_PORT}"


class Device:
    """The machine under test, at a root shell. Wraps the strategy with scenario verbs."""

    def __init__(self, strategy: BootStrategy, session: Session) -> None:
        self.strategy = strategy
        self.session = session

    def sh(self, cmd: str, timeout: float = 300.0) -> str:
        return self.strategy.shell.check(cmd, timeout)

    def run(self, cmd: str, timeout: float = 300.0) -> tuple[int, str]:
        return self.strategy.shell.run(cmd, timeout)

    def env(self) -> dict[str, str]:
        out = self.sh("fw_printenv")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def root_device(self) -> str:
        return self.sh("findmnt -n -o SOURCE /").strip()

    def artifact(self) -> str:
        return self.sh("pyupdate show-artifact").strip()

    def mount_media(self) -> str:
        self.sh(
            "mkdir -p /media/usb && (mountpoint -q /media/usb || mount -o ro /dev/vdb /media/usb)"
        )
        return "/media/usb"

    def reboot_to_shell(self) -> None:
        self.strategy.reboot()
        self.strategy.await_shell()

    def expect_boot(self, pattern: str, timeout: float = 240.0) -> None:
        self.strategy.power.expect(pattern, timeout)

    def power_cut(self) -> None:
        self.strategy.power_cut()

    def power_on_to_shell(self) -> None:
        self.strategy.transition(State.SHELL)
