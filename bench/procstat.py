"""CPU and memory of process trees from /proc, to split a phase's cost between the
server processes, PostgreSQL, the load generator and whatever else shares the VM."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces: the fields start after its closing parenthesis
    return text[text.rindex(")") + 2 :].split()


def tree_pids(roots: set[int]) -> list[str]:
    """The root processes and all their descendants (by parent pid): PostgreSQL's
    backends call setsid(), so a process group would miss them."""
    parent: dict[str, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields is not None:
                parent[entry] = fields[1]
    found = {str(r) for r in roots if str(r) in parent}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return sorted(found)


def cpu_seconds(roots: set[int]) -> float:
    """User + system CPU of these processes, their live descendants, and the children
    they reaped (cutime, cstime): a backend that exits mid-phase still counts."""
    total = 0
    for pid in tree_pids(roots):
        fields = _stat(pid)
        if fields is not None:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def rss_mib(roots: set[int]) -> tuple[float, float]:
    """(VmRSS, VmHWM) summed over these processes and their descendants, MiB."""
    rss = hwm = 0
    for pid in tree_pids(roots):
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return rss / 1024, hwm / 1024


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICK


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class Meter:
    """CPU spent by each party between start() and stop()."""

    servers: set[int]
    database: set[int]
    _start: tuple[float, float, float, float] = (0, 0, 0, 0)

    def _now(self) -> tuple[float, float, float, float]:
        return (cpu_seconds(self.servers), cpu_seconds(self.database), own_cpu(), machine_busy())

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        now = self._now()
        server, db, client, busy = (b - a for a, b in zip(self._start, now, strict=True))
        return {
            "cpu_server_s": server,
            "cpu_db_s": db,
            "cpu_client_s": client,
            "cpu_other_s": max(0.0, busy - server - db - client),
        }
