"""What the agent asks of a bootloader: which slot boots, and the trial of the other one.

One module per bootloader (uboot.py, grub.py), picked by the `Bootloader` key,
like RAUC's bootchooser. The operations are in slots, never in variables: what
a backend writes for them is its own business (docs/boot-env.md, "Backends").
Each write is atomic: after a power cut the bootloader sees the state before
the operation or the state after it, never a mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import BootEnvError
from ..slots import Slot


@dataclass(frozen=True, slots=True)
class BootState:
    """One read of the bootloader's choice.

    Args:
        primary: the slot the bootloader boots at the next power-on.
        booted: the slot it started last, as far as it can tell (the mounted
            root may know better: `slots.running_slot`).
        trial: `primary` is on trial: not confirmed, and the bootloader falls
            back to the other slot if it does not come up.
    """

    primary: Slot
    booted: Slot
    trial: bool

    def fell_back(self, tried: Slot) -> bool:
        """The bootloader gave up on `tried` and boots the other slot again, for good.

        The one rule for every backend: no trial left and `tried` is not the
        primary (docs/boot-env.md, "Commit and rollback decisions").
        """
        return not self.trial and self.primary != tried


class BootEnv(Protocol):
    """A bootloader's A/B choice. Errors are BootEnvError, prefixed with `name`."""

    name: str

    def state(self) -> BootState:
        """One read: primary, booted, trial."""
        ...

    def start_trial(self, slot: Slot) -> None:
        """Boot `slot` at the next power-on, once; the bootloader falls back if it fails."""
        ...

    def confirm(self, slot: Slot) -> None:
        """Keep booting `slot`, the primary on trial; writes nothing if it is confirmed."""
        ...

    def cancel(self, slot: Slot) -> None:
        """Boot `slot` (the old one) from now on, confirmed; ends any trial."""
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
    """`name=value` lines into a dict (the output of fw_printenv and grub-editenv list).

    Not keyvalue.py's reader: an env value is kept exactly as stored, leading
    spaces and `#` included, since the bootloader reads it that way.
    """
    env: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            env[name] = value
    return env
