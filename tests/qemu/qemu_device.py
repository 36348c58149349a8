"""The device under test and the session's images, as this repo's scenarios see them.

`Device` is pyupdate-qemu-test's `Target` (the one implementation of the
device's verbs) plus what only these tests use: the session's HTTP server
and util-linux's findmnt on the Debian stand-in rootfs.
Kept out of conftest.py so scenario modules import it by a unique name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import images

from pyupdate_host.qemutest.machine import GUEST_HOST_IP, BootStrategy
from pyupdate_host.qemutest.target import Target

HTTP_GUEST_PORT = 8080
# The harness board: $PYUPDATE_BOARD (`make test-qemu BOARD=qemu-aarch64`).
BOARD = os.environ.get("PYUPDATE_BOARD", "qemu-x86_64")


@dataclass(frozen=True, slots=True)
class Session:
    images: images.DeviceImages
    media: Path
    http_port: int
    work: Path

    @property
    def http_base(self) -> str:
        return f"http://{GUEST_HOST_IP}:{HTTP_GUEST_PORT}"


class Device(Target):
    """The machine under test, at a root shell."""

    def __init__(self, strategy: BootStrategy, session: Session | None) -> None:
        super().__init__(strategy, strategy.power.board)
        self.session = session

    def env(self) -> dict[str, str]:
        out = self.sh("fw_printenv")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def root_device(self) -> str:
        return self.sh("findmnt -n -o SOURCE /").strip()

    def expect_boot(self, pattern: str, timeout: float = 240.0) -> None:
        self.expect(pattern, timeout)
