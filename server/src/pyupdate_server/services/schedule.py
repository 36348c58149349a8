"""When a deployment is handed out: its start and end time, and its daily install window
(docs/deployments.md §10).

Nothing runs at those times. A device's deployment check compares them with the clock
inside its write transaction (services/rollout.py), and a management read closes what an
end time left over (`expire`), as phases start their due phases (services/phases.py).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pyupdate_server.db.models import Deployment
from pyupdate_server.errors import BadRequest

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Window:
    """A daily window, device local time: start included, end excluded; an end before
    the start crosses midnight."""

    start: str
    end: str

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


def parse_window(value: str, field: str = "install_window") -> Window:
    match = _WINDOW.match(value)
    if match is None:
        raise BadRequest(f'{field}: give "HH:MM-HH:MM" (24-hour, device local time)')
    start, end = value.split("-")
    if start == end:
        raise BadRequest(f"{field}: {value} never opens (start and end are the same)")
    return Window(start, end)


def window_of(dep: Deployment) -> Window | None:
    return parse_window(dep.install_window) if dep.install_window else None


def check_times(
    start: dt.datetime | None,
    end: dt.datetime | None,
    now: dt.datetime,
    last_phase_start: dt.datetime | None = None,
) -> None:
    """BadRequest when the end time is past, or not after the start (naive UTC times)."""
    if end is None:
        return
    if end <= now:
        raise BadRequest("end_ts is in the past: nothing would be handed out")
    if start is not None and end <= start:
        raise BadRequest("end_ts is not after start_ts")
    if last_phase_start is not None and end <= last_phase_start:
        raise BadRequest("end_ts is not after the last phase's start_ts")


def not_started(dep: Deployment, now: dt.datetime) -> bool:
    return dep.start_ts is not None and now < dep.start_ts


def ended(dep: Deployment, now: dt.datetime) -> bool:
    """No device not handed it yet is handed it any more (nor a retry)."""
    return dep.end_ts is not None and now >= dep.end_ts
