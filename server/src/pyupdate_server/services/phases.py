"""Phased rollouts: batches, start conditions, health thresholds and the decision log.

docs/deployments.md, "Phases". A phased deployment splits its devices into phases when it
is created (`DeviceDeployment.phase`); a device is handed the deployment only once its
phase has started, and never while the deployment is paused.

Nothing runs in the background. `advance` is called inside the write transactions that
can change what it decides: a device's part closing (rollout._finalize), a hand-out or a
management read finding a phase's start time passed (`due`), a resume. The caller holds
the deployment row for writing (locks.Mode.WRITE), so each decision is taken by exactly
one transaction, in any number of server processes, and commits with its record.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from pyupdate_server.db.models import (
    Deployment,
    DeploymentEvent,
    DeploymentPhase,
    DeviceDeployment,
    utcnow,
)
from pyupdate_server.errors import BadRequest
from pyupdate_server.services import webhooks

log = logging.getLogger(__name__)

MAX_PHASES = 100
FAILURE_ACTIONS = ("pause", "abort")
# closed without the artifact being tried: neither a success nor a failure of the phase
NOT_COUNTED = frozenset({"already-installed", "noartifact", "skipped", "decommissioned"})


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """One phase as asked for.

    Args:
        batch_size: percent of the deployment's devices (Mender's field), rounded down
        batch_count: number of devices
        start_ts: not before this time (naive UTC)
        when_healthy: not before the previous phase reached the success threshold
    """

    batch_size: int | None = None
    batch_count: int | None = None
    start_ts: dt.datetime | None = None
    when_healthy: bool = False


@dataclass(frozen=True, slots=True)
class Threshold:
    value: int
    unit: str  # "count" (devices) or "percent" (of a phase's counted devices)

    def __str__(self) -> str:
        return f"{self.value}%" if self.unit == "percent" else str(self.value)


def threshold(name: str, count: int | None, percent: int | None) -> Threshold:
    if count is not None and percent is not None:
        raise BadRequest(f"{name}: give count or percent, not both")
    if count is not None:
        if count < 1:
            raise BadRequest(f"{name}: count must be at least 1")
        return Threshold(count, "count")
    if percent is not None:
        if not 1 <= percent <= 100:
            raise BadRequest(f"{name}: percent must be between 1 and 100")
        return Threshold(percent, "percent")
    raise BadRequest(f"{name}: give count or percent")


def plan(specs: Sequence[PhaseSpec], total: int) -> list[int]:
    """The number of devices of each phase, or BadRequest naming what does not add up."""
    if not specs:
        raise BadRequest("phases: give at least one phase")
    if len(specs) > MAX_PHASES:
        raise BadRequest(f"phases: at most {MAX_PHASES} phases")
    last = len(specs)
    for n, spec in enumerate(specs, 1):
        if spec.batch_size is not None and spec.batch_count is not None:
            raise BadRequest(f"phase {n}: give batch_size (percent) or batch_count, not both")
        if spec.batch_size is not None and not 1 <= spec.batch_size <= 100:
            raise BadRequest(f"phase {n}: batch_size is a percent, between 1 and 100")
        if spec.batch_count is not None and spec.batch_count < 1:
            raise BadRequest(f"phase {n}: batch_count must be at least 1")
        if n < last and spec.batch_size is None and spec.batch_count is None:
            raise BadRequest(
                f"phase {n}: only the last phase may omit its batch (it takes the rest)"
            )
        if n == 1 and spec.when_healthy:
            raise BadRequest("phase 1: start_when_healthy needs a previous phase")
        if n > 1 and spec.start_ts is None and not spec.when_healthy:
            raise BadRequest(f"phase {n}: give start_ts, start_when_healthy or both")
    percents = [s.batch_size for s in specs if s.batch_size is not None]
    counts = [s.batch_count for s in specs if s.batch_count is not None]
    if percents and counts:
        raise BadRequest(
            "phases: give every batch in percent (batch_size) or every one in devices (batch_count)"
        )
    previous: tuple[int, dt.datetime] | None = None
    for n, spec in enumerate(specs, 1):
        if spec.start_ts is None:
            continue
        if previous is not None and spec.start_ts <= previous[1]:
            raise BadRequest(f"phase {n}: start_ts is not after phase {previous[0]}'s")
        previous = (n, spec.start_ts)
    if sum(percents) > 100:
        raise BadRequest(f"phases: batch sizes add up to {sum(percents)}%, more than 100%")
    if specs[-1].batch_size is not None and sum(percents) != 100:
        raise BadRequest(f"phases: batch sizes add up to {sum(percents)}%, not 100%")
    if sum(counts) > total or (specs[-1].batch_count is not None and sum(counts) != total):
        raise BadRequest(
            f"phases: batch counts add up to {sum(counts)}, the deployment has {total} devices"
        )
    sizes = []
    for n, spec in enumerate(specs[:-1], 1):
        size = (
            spec.batch_count
            if spec.batch_count is not None
            else (spec.batch_size or 0) * total // 100
        )
        if size < 1:
            raise BadRequest(f"phase {n}: {spec.batch_size}% of {total} devices is no device")
        sizes.append(size)
    rest = total - sum(sizes)
    if rest < 1:
        raise BadRequest(
            f"phases: phases 1-{last - 1} take all {total} devices, none is left for phase {last}"
        )
    return [*sizes, rest]


def check_thresholds(
    specs: Sequence[PhaseSpec], sizes: Sequence[int], success: Threshold | None
) -> None:
    """A success threshold some phase waits for and can reach; BadRequest if not."""
    if success is None:
        return
    gates = [n for n, spec in enumerate(specs, 1) if spec.when_healthy]
    if not gates:
        raise BadRequest("success_threshold: no phase has start_when_healthy, so none waits for it")
    if success.unit == "count":
        for n in gates:
            if success.value > sizes[n - 2]:
                raise BadRequest(
                    f"success_threshold: {success.value} devices is more than phase "
                    f"{n - 1}'s {sizes[n - 2]}, so phase {n} would never start"
                )


def create(
    session: Session,
    dep: Deployment,
    specs: Sequence[PhaseSpec],
    sizes: Sequence[int],
    *,
    failure: Threshold | None,
    failure_action: str,
    success: Threshold | None,
) -> None:
    """Store the phases of the new `dep` (its rows already carry their phase numbers)."""
    dep.phase_count = len(specs)
    dep.phases_started = 0
    if failure is not None:
        dep.failure_threshold, dep.failure_unit = failure.value, failure.unit
    dep.failure_action = failure_action
    if success is not None:
        dep.success_threshold, dep.success_unit = success.value, success.unit
    for n, (spec, size) in enumerate(zip(specs, sizes, strict=True), 1):
        session.add(
            DeploymentPhase(
                deployment_id=dep.id,
                number=n,
                batch_size=spec.batch_size,
                batch_count=spec.batch_count,
                start_ts=spec.start_ts,
                when_healthy=spec.when_healthy,
                size=size,
                failures_accepted=0,
            )
        )
    session.flush()
    advance(session, dep)


def gated(dep: Deployment) -> bool:
    return dep.phase_count > 0


def holding(dep: Deployment, row: DeviceDeployment) -> bool:
    """The row must wait: its deployment is paused or its phase has not started."""
    return dep.paused or (row.phase is not None and row.phase > dep.phases_started)


def due(session: Session, dep: Deployment, now: dt.datetime | None = None) -> bool:
    """A cheap read: could `advance` start the next phase now? (health is decided on
    reports; what becomes due by itself is a start time passing)"""
    if not gated(dep) or dep.aborted or dep.paused or dep.status == "finished":
        return False
    if dep.phases_started >= dep.phase_count:
        return False
    number = dep.phases_started + 1
    found = {
        p.number: p
        for p in session.scalars(
            select(DeploymentPhase).where(
                DeploymentPhase.deployment_id == dep.id,
                DeploymentPhase.number.in_((number - 1, number)),
            )
        )
    }
    upcoming, previous = found.get(number), found.get(number - 1)
    if upcoming is None:
        return False
    return _may_start(upcoming, previous, now or utcnow())


def _may_start(
    upcoming: DeploymentPhase, previous: DeploymentPhase | None, now: dt.datetime
) -> bool:
    if upcoming.start_ts is not None and upcoming.start_ts > now:
        return False
    return not upcoming.when_healthy or (previous is not None and previous.healthy is not None)


@dataclass(slots=True)
class Counts:
    size: int = 0
    successes: int = 0
    failures: int = 0
    not_counted: int = 0
    final: int = 0
    handed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def counted(self) -> int:
        return self.size - self.not_counted


def counts(session: Session, deployment_id: str) -> dict[int, Counts]:
    """Per phase number: what its devices came to."""
    out: dict[int, Counts] = {}
    handed_rows = func.sum(case((DeviceDeployment.attempts > 0, 1), else_=0))
    for phase, status, final, n, handed in session.execute(
        select(
            DeviceDeployment.phase,
            DeviceDeployment.status,
            DeviceDeployment.final,
            func.count(),
            handed_rows,
        )
        .where(DeviceDeployment.deployment_id == deployment_id)
        .group_by(DeviceDeployment.phase, DeviceDeployment.status, DeviceDeployment.final)
    ):
        c = out.setdefault(phase or 0, Counts())
        c.size += n
        c.by_status[status] = c.by_status.get(status, 0) + n
        c.handed += int(handed or 0)
        if not final:
            continue
        c.final += n
        if status == "success":
            c.successes += n
        elif status == "failure":
            c.failures += n
        elif status in NOT_COUNTED:
            c.not_counted += n
    return out


def phases_of(session: Session, deployment_id: str) -> list[DeploymentPhase]:
    return list(
        session.scalars(
            select(DeploymentPhase)
            .where(DeploymentPhase.deployment_id == deployment_id)
            .order_by(DeploymentPhase.number)
            .execution_options(populate_existing=True)
        )
    )


def _success_threshold(dep: Deployment) -> Threshold:
    if dep.success_threshold is None or dep.success_unit is None:
        return Threshold(100, "percent")
    return Threshold(dep.success_threshold, dep.success_unit)


def _reached(t: Threshold, n: int, of: int) -> bool:
    if t.unit == "count":
        return n >= t.value
    return n * 100 >= t.value * of


def _percent(n: int, of: int) -> int:
    return round(100 * n / of) if of else 0


def advance(session: Session, dep: Deployment, now: dt.datetime | None = None) -> bool:
    """Take every decision due on `dep`, held with Mode.WRITE; True: abort it now (the
    failure threshold was reached and its action is "abort": the caller closes the rows)."""
    if not gated(dep) or dep.aborted or dep.status == "finished":
        return False
    now = now or utcnow()
    phases = phases_of(session, dep.id)
    per_phase = counts(session, dep.id)
    success = _success_threshold(dep)
    for phase in phases[: dep.phases_started]:
        c = per_phase.get(phase.number, Counts())
        if dep.failure_threshold is not None and dep.failure_unit is not None and not dep.paused:
            failure = Threshold(dep.failure_threshold, dep.failure_unit)
            failures = c.failures - phase.failures_accepted
            if failures > 0 and _reached(failure, failures, c.counted):
                since = " since the last resume" if phase.failures_accepted else ""
                verb = "paused" if dep.failure_action == "pause" else "aborted"
                record(
                    session,
                    dep,
                    verb,
                    f"phase {phase.number}: {failures} failures{since} of {c.counted} "
                    f"({_percent(failures, c.counted)}%) >= threshold {failure}: {verb}",
                    phase=phase.number,
                    failures=failures,
                    devices=c.counted,
                    percent=_percent(failures, c.counted),
                    threshold=failure.value,
                    unit=failure.unit,
                )
                if dep.failure_action == "abort":
                    return True
                dep.paused = True
        _check_health(session, dep, phase, c, success, now)
    while not dep.paused and dep.phases_started < len(phases):
        upcoming = phases[dep.phases_started]
        previous = phases[dep.phases_started - 1] if dep.phases_started else None
        if not _may_start(upcoming, previous, now):
            break
        upcoming.started = now
        dep.phases_started += 1
        if upcoming.when_healthy and previous is not None:
            why = f"phase {previous.number} is healthy"
        elif upcoming.start_ts is not None:
            why = "its start time came"
        else:
            why = "at once"
        record(
            session,
            dep,
            "phase_started",
            f"phase {upcoming.number}: started ({why}): {upcoming.size} devices",
            phase=upcoming.number,
            devices=upcoming.size,
        )
        c = per_phase.get(upcoming.number, Counts())
        _check_health(session, dep, upcoming, c, success, now)
    session.flush()
    return False


def _check_health(
    session: Session,
    dep: Deployment,
    phase: DeploymentPhase,
    c: Counts,
    success: Threshold,
    now: dt.datetime,
) -> None:
    if phase.healthy is not None:
        return
    # a count threshold larger than what is left to count (devices that already ran
    # the artifact, decommissioned...) asks for every counted device instead
    wanted = (
        Threshold(min(success.value, c.counted), "count") if success.unit == "count" else success
    )
    if not _reached(wanted, c.successes, c.counted):
        return
    phase.healthy = now
    record(
        session,
        dep,
        "healthy",
        f"phase {phase.number}: {c.successes} successes of {c.counted} "
        f"({_percent(c.successes, c.counted)}%) >= threshold {success}: healthy",
        phase=phase.number,
        successes=c.successes,
        devices=c.counted,
        percent=_percent(c.successes, c.counted),
        threshold=success.value,
        unit=success.unit,
    )


def accept_failures(session: Session, dep: Deployment) -> None:
    """On resume: the failures so far were seen by a person; the threshold counts anew."""
    per_phase = counts(session, dep.id)
    for phase in phases_of(session, dep.id):
        phase.failures_accepted = per_phase.get(phase.number, Counts()).failures


def record(
    session: Session,
    dep: Deployment,
    kind: str,
    message: str,
    *,
    phase: int | None = None,
    by: str = "",
    **numbers: int | str,
) -> None:
    """Keep a decision in the deployment's event list and log it with its numbers."""
    session.add(
        DeploymentEvent(
            deployment_id=dep.id,
            created=utcnow(),
            kind=kind,
            phase=phase,
            by=by,
            message=message,
            data=dict(numbers),
        )
    )
    webhooks.decision(session, dep, kind, message, phase, by, numbers)
    log.info(
        message,
        extra={
            "deployment": dep.id,
            "decision": kind,
            "phase": phase,
            "by": by or "server",
            **numbers,
        },
    )


def events(session: Session, deployment_id: str) -> list[DeploymentEvent]:
    return list(
        session.scalars(
            select(DeploymentEvent)
            .where(DeploymentEvent.deployment_id == deployment_id)
            .order_by(DeploymentEvent.id)
        )
    )
