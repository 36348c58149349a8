"""Mender's A/B variables, for bootloaders whose env is `name=value` pairs (U-Boot, GRUB).

The only module that knows `mender_boot_part`, `upgrade_available` and
`bootcount`. A backend subclasses `MenderEnv` and supplies `read` (all
variables) and `write` (several at once, atomically, read back); the
operations below are then the same for every such bootloader, as the boot
rules are (docs/boot-env.md, "Boot rules"):

| operation   | one write of                                                    |
|-------------|-----------------------------------------------------------------|
| start_trial | mender_boot_part, mender_boot_part_hex, upgrade_available=1, bootcount=0 |
| confirm     | upgrade_available=0 (nothing if already 0)                      |
| cancel      | mender_boot_part, mender_boot_part_hex, upgrade_available=0, bootcount=0 |
"""

from __future__ import annotations

from ..errors import BootEnvError, SlotError
from ..slots import Slot, other_slot, slot_by_number
from .base import BootState


def boot_vars(slot: Slot) -> dict[str, str]:
    """`mender_boot_part` and `mender_boot_part_hex` for `slot` (hex in upper case, like 3.4)."""
    return {"mender_boot_part": str(slot.number), "mender_boot_part_hex": f"{slot.number:X}"}


def decode(backend: str, env: dict[str, str], slots: tuple[Slot, Slot]) -> BootState:
    """The state in Mender's variables.

    While a trial is pending (`upgrade_available=1`) a `bootcount` of 0 means
    the bootloader has not started the trial slot yet: the other slot runs.
    U-Boot's bootcount_env and grub-mender-grubenv both raise it on a trial boot.
    """
    value = env.get("mender_boot_part")
    if value is None or not value.strip().isdigit():
        raise BootEnvError(f"{backend}: mender_boot_part is {value!r}, not a partition number")
    try:
        primary = slot_by_number(slots, int(value))
    except SlotError as err:
        raise BootEnvError(f"{backend}: mender_boot_part: {err}") from None
    trial = env.get("upgrade_available") == "1"
    try:
        started = int(env.get("bootcount", "0") or "0") >= 1
    except ValueError:
        started = False
    booted = primary if not trial or started else other_slot(slots, primary)
    return BootState(primary=primary, booted=booted, trial=trial)


class MenderEnv:
    """The BootEnv operations in Mender's variables; subclasses supply `read` and `write`.

    Args:
        slots: (A, B); the env names a slot by its partition number.
    """

    name = "mender"

    def __init__(self, slots: tuple[Slot, Slot]) -> None:
        self.slots = slots

    def read(self) -> dict[str, str]:
        """All variables; BootEnvError if the env cannot be read."""
        raise NotImplementedError

    def write(self, values: dict[str, str]) -> None:
        """Set `values` in one atomic update, then read them back to verify."""
        raise NotImplementedError

    def state(self) -> BootState:
        return decode(self.name, self.read(), self.slots)

    def start_trial(self, slot: Slot) -> None:
        # one write: a power cut leaves either the old env or all of this
        self.write({**boot_vars(slot), "upgrade_available": "1", "bootcount": "0"})

    def confirm(self, slot: Slot) -> None:
        state = self.state()
        if state.primary != slot:
            raise BootEnvError(
                f"{self.name}: cannot confirm slot {slot.label}:"
                f" the bootloader boots slot {state.primary.label}"
            )
        if state.trial:  # else confirmed before a power cut: nothing left to do
            self.write({"upgrade_available": "0"})

    def cancel(self, slot: Slot) -> None:
        self.write({**boot_vars(slot), "upgrade_available": "0", "bootcount": "0"})
