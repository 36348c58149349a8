"""The bootloader environment as a Protocol: read all variables, write several at once.

One module per bootloader (uboot.py, grub.py), picked by the `Bootloader` key.
`write` is atomic: after a power cut the bootloader sees either all of the
new values or none of them (docs/boot-env.md, "Atomicity").
"""

from __future__ import annotations

from typing import Protocol

from ..errors import BootEnvError


class BootEnv(Protocol):
    name: str

    def read(self) -> dict[str, str]:
        """All variables; raises BootEnvError if the env cannot be read."""
        ...

    def write(self, values: dict[str, str]) -> None:
        """Set `values` in one atomic update, then read them back to verify."""
        ...


def check_values(backend: str, values: dict[str, str]) -> None:
    for name, value in values.items():
        if not name or any(c in name for c in "= \t\n") or "\n" in value:
            raise BootEnvError(f"{backend}: refusing to write variable {name!r}={value!r}")


def verify_written(backend: str, wanted: dict[str, str], got: dict[str, str]) -> None:
    for name, value in wanted.items():
        if got.get(name, "") != value:
            raise BootEnvError(
                f"{backend}: {name} reads back as {got.get(name)!r} after writing {value!r}"
            )


def parse_lines(text: str) -> dict[str, str]:
    """`name=value` lines into a dict (the output of fw_printenv and grub-editenv list)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            env[name] = value
    return env
