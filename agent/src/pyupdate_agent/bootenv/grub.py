"""GRUB: Mender's variables (mender.py) through grub-editenv on a grubenv file.

grub-editenv rewrites its file in place, so an update is made on a copy
(`<file>.new`), synced and renamed over the original: a power cut leaves the
old or the new file, never half of one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import BootEnvError
from ..slots import Slot
from .base import check_values, parse_lines, verify_written
from .mender import MenderEnv

NAME = "grub"


class GrubEnv(MenderEnv):
    """Args:
    slots: (A, B).
    env_file: the grubenv file (1024 bytes, made by `grub-editenv FILE create`).
    """

    name = NAME

    def __init__(self, slots: tuple[Slot, Slot], env_file: str) -> None:
        super().__init__(slots)
        self.path = Path(env_file)

    def read(self) -> dict[str, str]:
        if not self.path.is_file():
            raise BootEnvError(f"{NAME}: {self.path} does not exist")
        return parse_lines(_run(["grub-editenv", str(self.path), "list"]))

    def write(self, values: dict[str, str]) -> None:
        check_values(NAME, values)
        self.read()  # refuse to replace an env we cannot read
        tmp = self.path.with_name(self.path.name + ".new")
        try:
            shutil.copyfile(self.path, tmp)
            _run(["grub-editenv", str(tmp), "set", *(f"{k}={v}" for k, v in values.items())])
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dirfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise BootEnvError(f"{NAME}: cannot update {self.path} ({err.strerror})") from None
        verify_written(NAME, values, self.read())


def _run(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise BootEnvError(f"{NAME}: grub-editenv not found (install grub-common)") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        detail = lines[-1] if lines else f"exit code {proc.returncode}"
        raise BootEnvError(f"{NAME}: {' '.join(cmd)} failed: {detail}")
    return proc.stdout
