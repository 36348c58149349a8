"""The install window: a daily span of the device's local time in which a managed
update may install and reboot (docs/agent.md, "Install windows").

`HH:MM-HH:MM`, start included, end excluded; an end before the start crosses
midnight (`22:00-04:00`). Equal start and end would never open (or always: we
cannot tell which was meant), so it is refused. The one rule for the config key
`InstallWindow` and the deployment's `install_window` field (docs/device-api.md).

Test seam: `PYUPDATE_TEST_CLOCK=<file>` makes `local_now()` read the local time
from that file (`HH:MM`, today's date) when it exists, so a test moves the clock
without waiting hours; waits are then cut to `TEST_TICK` seconds so a change is
seen at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

CLOCK = "PYUPDATE_TEST_CLOCK"
TEST_TICK = 0.2
DAY = 24 * 60
_FORMAT = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")
MESSAGE = 'must be "HH:MM-HH:MM" (24-hour local time, start and end differ), e.g. "02:00-04:30"'


@dataclass(frozen=True, slots=True)
class Window:
    """Args: start, end: minutes after local midnight (end may be before start)."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    def is_open(self, now: datetime) -> bool:
        minute = now.hour * 60 + now.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # crosses midnight

    def seconds_until_open(self, now: datetime) -> float:
        """0 when open; else the time until the next start (checked again on waking:
        a change of daylight saving time moves it by an hour at most)."""
        if self.is_open(now):
            return 0.0
        start = now.replace(hour=self.start // 60, minute=self.start % 60, second=0, microsecond=0)
        if start <= now:
            start += timedelta(days=1)
        return (start - now).total_seconds()


def parse(text: object) -> Window:
    """`HH:MM-HH:MM` (spaces around the dash allowed); ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(MESSAGE)
    found = _FORMAT.match(text.replace(" ", ""))
    if found is None:
        raise ValueError(MESSAGE)
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    window = Window(h1 * 60 + m1, h2 * 60 + m2)
    if window.start == window.end:
        raise ValueError(MESSAGE)
    return window


def from_parts(start: object, end: object) -> Window:
    """The deployment's `{"start": "HH:MM", "end": "HH:MM"}`; ValueError if malformed."""
    if not isinstance(start, str) or not isinstance(end, str):
        raise ValueError(MESSAGE)
    return parse(f"{start}-{end}")


def local_now() -> datetime:
    """The device's local time (naive), or the test clock's (see the module's docstring)."""
    now = datetime.now()
    path = os.environ.get(CLOCK)
    if path:
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            return now
        hour, minute = (int(x) for x in text.split(":"))
        return now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return now


def tick(seconds: float) -> float:
    """A wait, cut short while the test clock is in use."""
    return min(seconds, TEST_TICK) if os.environ.get(CLOCK) else seconds


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
