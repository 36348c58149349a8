"""Runs the chosen scenarios one after the other, each on a fresh copy of the disk.

A scenario passes, fails (an AssertionError: the device did something else),
errors (anything else: QEMU or the host broke) or is skipped (the time budget
ran out before it started). The budget is a whole-run deadline, enforced with
SIGALRM so a scenario that hangs in the guest is cut off where it stands.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import server as fleet
from .build_output import Artifact, BuildOutput
from .deltas import Deltas
from .machine import BootStrategy, DiskImage, QemuDriver, ShellDriver, State
from .media import broken_artifact, veto_artifact
from .scenarios import Scenario
from .target import Target

TAIL_LINES = 40


class BudgetExceeded(Exception):
    """The run's time budget ended inside a scenario."""


@dataclass
class Result:
    name: str
    status: str  # passed, failed, error, skipped
    seconds: float = 0.0
    message: str = ""
    console_tail: str = ""
    log: Path | None = None
    boots: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    watchdog_resets: list[str] = field(default_factory=list)


class ScenarioContext:
    """What one scenario may use; powers off and stops everything it started."""

    def __init__(
        self,
        output: BuildOutput,
        media: Path,
        broken: Artifact | None,
        work: Path,
        log: Path,
        say: Callable[[str], None],
        deltas: Deltas | None = None,
    ) -> None:
        self.output = output
        self._broken = broken
        self._deltas = deltas
        self.media = media
        self.work = work
        self.log = log
        self.say = say
        self.notes: list[str] = []
        self.targets: list[Target] = []
        self.servers: list[fleet.Server] = []

    def boot(self, forwards: dict[int, int] | None = None) -> Target:
        disk = self.work / f"disk-{len(self.targets)}.img"
        subprocess.run(["cp", "--sparse=always", str(self.output.disk), str(disk)], check=True)
        power = QemuDriver(
            self.output.board, DiskImage(disk, (self.media,)), self.log, forwards=forwards or {}
        )
        strategy = BootStrategy(
            power, ShellDriver(power), user=self.output.user, password=self.output.password
        )
        target = Target(strategy, self.output.board)
        self.targets.append(target)
        self.step("booting")
        target.strategy.transition(State.SHELL)
        return target

    def server(self) -> fleet.Server:
        server = fleet.Server(self.work / "server-data", self.work / "server.log")
        self.servers.append(server)
        return server

    def broken(self) -> Artifact:
        if self._broken is None:
            raise AssertionError("no broken artifact: the media disk was made without one")
        return self._broken

    def veto(self) -> Artifact:
        if self.output.veto is None:
            raise AssertionError("no veto artifact: none was given or made for this run")
        return self.output.veto

    def deltas(self) -> Deltas:
        if self._deltas is None:
            raise AssertionError("no deltas: none were made for this run")
        return self._deltas

    def step(self, text: str) -> None:
        self.notes.append(text)
        self.say(text)

    def close(self) -> None:
        for target in self.targets:
            target.strategy.power.off()
        for server in self.servers:
            server.stop()


@contextmanager
def _deadline(at: float) -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise BudgetExceeded()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, max(at - time.monotonic(), 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _tail(log: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = log.read_bytes().decode(errors="replace")  # not read_text: it turns \r into \n
    except OSError:
        return ""
    return "\n".join(text.replace("\r", "").splitlines()[-lines:])


def prepare_broken(output: BuildOutput, work: Path) -> Artifact:
    """The rollback scenarios' artifact: the one given, or the update without an init."""
    return output.broken or broken_artifact(output.update, output.signing_key, work)


def prepare_veto(output: BuildOutput, work: Path) -> Artifact:
    """The health-check scenario's artifact: the one given, or the update with a veto."""
    return output.veto or veto_artifact(output.update, output.signing_key, work)


def run_scenario(
    scenario: Scenario,
    output: BuildOutput,
    media: Path,
    broken: Artifact | None,
    work: Path,
    log: Path,
    say: Callable[[str], None],
    deltas: Deltas | None = None,
) -> Result:
    work.mkdir(parents=True, exist_ok=True)
    ctx = ScenarioContext(output, media, broken, work, log, say, deltas)
    started = time.monotonic()
    result = Result(scenario.name, "passed", log=log)
    try:
        scenario.run(ctx)
    except AssertionError as err:
        result.status, result.message = "failed", str(err) or "assertion failed"
    except BudgetExceeded:
        result.status, result.message = "error", "time budget exceeded during this scenario"
    except Exception as err:  # QEMU, the host, the server: reported, never a traceback
        result.status, result.message = "error", f"{type(err).__name__}: {err}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)  # the budget ends scenarios, not their cleanup
        ctx.close()
    result.seconds = time.monotonic() - started
    result.notes = ctx.notes
    for target in ctx.targets:
        result.boots += target.strategy.boot_seconds
        result.watchdog_resets += target.strategy.power.watchdog.resets
    if result.status != "passed":
        result.console_tail = _tail(log)
    subprocess.run(["rm", "-rf", str(work)], check=False)  # the disks are big; the log stays
    return result


def run_all(
    scenarios: list[Scenario],
    output: BuildOutput,
    media: Path,
    broken: Artifact | None,
    work: Path,
    logs: Path,
    budget_s: float,
    say: Callable[[str, str], None],
    deltas: Deltas | None = None,
) -> list[Result]:
    """Every scenario in order until the budget ends; the rest are skipped with the reason."""
    deadline = time.monotonic() + budget_s
    results: list[Result] = []
    for scenario in scenarios:
        if time.monotonic() >= deadline:
            results.append(Result(scenario.name, "skipped", message="time budget exceeded"))
            continue
        log = logs / f"{scenario.name}.log"
        log.unlink(missing_ok=True)
        say(scenario.name, "start")
        with _deadline(deadline):
            result = run_scenario(
                scenario,
                output,
                media,
                broken,
                work / scenario.name,
                log,
                lambda text, name=scenario.name: say(name, text),
                deltas,
            )
        results.append(result)
        say(scenario.name, f"{result.status} in {result.seconds:.0f} s")
    return results
