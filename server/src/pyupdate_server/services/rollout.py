"""Who gets what: the deployment rules, without HTTP (docs/deployments.md).

Every function here runs inside one write transaction (Database.write, which
is BEGIN IMMEDIATE on SQLite): a decision and its record commit together, so
two concurrent polls can never hand one device two deployments. On PostgreSQL
the row locks of services/locks.py give the same guarantee across processes.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from pyupdate_server.db import dialect
from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Artifact, Deployment, DeviceDeployment, utcnow
from pyupdate_server.errors import BadRequest, Conflict, NotFound
from pyupdate_server.services import (
    delta_jobs,
    deltas,
    downgrade,
    dynamic,
    locks,
    phases,
    schedule,
    webhooks,
)
from pyupdate_server.services.locks import Mode

# what a device may report (Mender 3.4 names, docs/device-api.md "Status")
DEVICE_STATUSES = frozenset(
    {
        "downloading",
        "installing",
        "rebooting",
        "success",
        "failure",
        "already-installed",
        "pause_before_installing",
        "pause_before_committing",
        "pause_before_rebooting",
    }
)
FINAL_STATUSES = frozenset(
    {
        "success",
        "failure",
        "already-installed",
        "noartifact",
        "aborted",
        "decommissioned",
        "skipped",
    }
)
# an abort stops devices in these states; later states finish on their own
ABORTABLE = frozenset({"pending", "downloading", "pause_before_installing", "failure"})
STAT_KEYS = (
    "success",
    "pending",
    "downloading",
    "installing",
    "rebooting",
    "failure",
    "noartifact",
    "already-installed",
    "aborted",
    "decommissioned",
    "skipped",
    "pause_before_installing",
    "pause_before_committing",
    "pause_before_rebooting",
)


@dataclass(frozen=True, slots=True)
class Assignment:
    deployment: Deployment
    artifact: Artifact
    # when `artifact` is a delta: the full artifact, the device's fallback (deltas.py)
    full: Artifact | None = None


class Hold(enum.Enum):
    """The device's oldest open deployment is paused or its phase has not started: it
    waits, and gets no later deployment meanwhile (deployments apply in order)."""

    WAIT = "wait"


def depends_met(artifact: Artifact, device_type: str, provides: Mapping[str, object]) -> bool:
    """Mender's rule: the device type is listed and every depends key is provided."""
    if device_type not in artifact.device_types:
        return False
    for key, wanted in artifact.depends.items():
        have = provides.get(key)
        if have is None:
            return False
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if str(have) not in [str(a) for a in allowed]:
            return False
    return True


def pick_artifact(
    session: Session,
    name: str,
    device_type: str,
    provides: Mapping[str, object],
    *,
    deltas_ok: bool = False,
) -> deltas.Choice | None:
    """The newest full artifact whose depends the device meets, or with `deltas_ok` a
    smaller delta it meets (deltas.choose); None when nothing fits."""
    candidates = session.scalars(
        select(Artifact).where(Artifact.name == name).order_by(Artifact.created.desc())
    )
    fitting = (a for a in candidates if depends_met(a, device_type, provides))
    return deltas.choose(fitting, deltas=deltas_ok)


def _fallback_of(
    session: Session,
    artifact: Artifact,
    name: str,
    device_type: str,
    provides: Mapping[str, object],
) -> Artifact | None:
    """A delta in flight, handed out again: the full artifact it falls back to."""
    if not deltas.is_delta(artifact):
        return None
    choice = pick_artifact(session, name, device_type, provides)
    return choice.full if choice is not None else None


@dataclass(frozen=True, slots=True)
class Poll:
    """What one deployment check says of the device: read once, before any deployment."""

    device_type: str
    provides: Mapping[str, object]
    running: Mapping[str, str]  # its `*.version`s (inventory, then provides): downgrades
    takes_deltas: bool  # a pyupdate agent with the delta module (deltas.accepts_deltas)


@dataclass(frozen=True, slots=True)
class PollHint:
    """What a poll needs to know before it decides anything (one read, no lock)."""

    open_row: bool  # a deployment targets the device and has not ended for it
    dynamic_open: bool  # some dynamic deployment is open: the device may join it


# one round trip for what the fleet's steady state asks on every poll (was two)
_POLL_HINT_SQL = (
    "SELECT EXISTS (SELECT 1 FROM device_deployments WHERE device_id = :d AND final = :f),"
    " EXISTS (SELECT 1 FROM deployments WHERE dynamic = :t"
    f" AND status IN ({', '.join(repr(s) for s in dynamic.OPEN)}) AND aborted = :f)"
)


async def poll_hint(db: Database, device_id: str) -> PollHint:
    row = await db.aquick(_POLL_HINT_SQL, {"d": device_id, "t": True, "f": False})
    assert row is not None  # a SELECT without FROM has its one row
    return PollHint(open_row=bool(row[0]), dynamic_open=bool(row[1]))


def next_for_device(
    session: Session, device_id: str, device_type: str, provides: Mapping[str, object]
) -> Assignment | None:
    """The deployment the device should run now, or None (204)."""
    inventory = locks.device_inventory(session, device_id) or {}
    poll = Poll(
        device_type,
        provides,
        running=downgrade.versions(inventory, provides),
        takes_deltas=deltas.accepts_deltas(inventory),
    )
    # one statement for what took five (bench/results/server-scale-2026-12-07b.md): the
    # device's open rows and their deployments, locked in SHARE mode and freshly read
    # (what _offer did one by one, after a read of max_devices to choose the mode, and
    # then read the row again), and whether any dynamic deployment is open (else
    # dynamic.candidates has nothing to find)
    query = (
        select(DeviceDeployment, Deployment, _ANY_DYNAMIC_OPEN)
        .join(Deployment, Deployment.id == DeviceDeployment.deployment_id)
        .where(DeviceDeployment.device_id == device_id, DeviceDeployment.final.is_(False))
        .order_by(Deployment.created, Deployment.id)
        .execution_options(populate_existing=True)
    )
    if not dialect.serializes_writers(session):
        # FOR KEY SHARE OF deployments, device_deployments: locks.deployment(..., SHARE)
        # for each, in the order they are visited (no two transactions lock in a circle),
        # and each row as it is now, not as this statement's snapshot had it (what
        # locks.reread did): an abort waited for closed it, or it would be handed again
        query = query.with_for_update(read=True, key_share=True, of=(Deployment, DeviceDeployment))
    result = session.execute(query).all()
    rows = [(row, dep) for row, dep, _ in result]
    held = {dep.id: dep for _, dep in rows}
    for row, dep in rows:
        if row.claimed is not None:
            # in flight: the same deployment again, never a second one
            artifact = session.get(Artifact, row.artifact_id) if row.artifact_id else None
            if artifact is not None:
                full = _fallback_of(session, artifact, dep.artifact_name, device_type, provides)
                return Assignment(dep, artifact, full)
    # its rows, and the dynamic groups it may join now, in the order they were made
    walk: list[tuple[dt.datetime, str, DeviceDeployment | None]] = [
        (dep.created, dep.id, row) for row, dep in rows if not dep.aborted
    ]
    if not result or any(dynamic_open for _, _, dynamic_open in result):
        walk += [(d.created, d.id, None) for d in dynamic.candidates(session, device_id)]
    walk.sort(key=lambda entry: (entry[0], entry[1]))
    for _, deployment_id, maybe_row in walk:
        if maybe_row is None:
            assignment = _join(session, device_id, deployment_id, poll)
        else:
            assignment = _offer(
                session, maybe_row, deployment_id, poll, held=held.get(deployment_id)
            )
        if assignment is Hold.WAIT:
            return None
        if assignment is not None:
            return assignment
    return None


# "is any dynamic deployment open?", as a column of next_for_device's query
_other = aliased(Deployment)  # not correlated with the query's own deployments
_ANY_DYNAMIC_OPEN = (
    select(_other.id)
    .where(_other.dynamic.is_(True), _other.status.in_(dynamic.OPEN), _other.aborted.is_(False))
    .exists()
    .label("dynamic_open")
)


def _join(
    session: Session, device_id: str, deployment_id: str, poll: Poll
) -> Assignment | Hold | None:
    """The device joins a dynamic deployment: its row is made, then offered as any other.
    The deployment is locked first: an abort or a pause either came before (seen here)
    or waits for this transaction, and then closes the new row too."""
    dep = locks.deployment(session, deployment_id, _mode(session, deployment_id))
    if dep is None or dep.aborted or dep.status == "finished" or dynamic.closed(session, dep):
        return None
    if dep.paused or schedule.not_started(dep, utcnow()):
        return Hold.WAIT  # no row: membership is decided again when it may start
    row = DeviceDeployment(
        deployment_id=dep.id,
        device_id=device_id,
        status="pending",
        final=False,
        substate="",
        attempts=0,
        created=utcnow(),
    )
    session.add(row)
    session.flush()
    return _offer(session, row, dep.id, poll)


def _mode(session: Session, deployment_id: str) -> Mode:
    # a capped deployment counts its devices one hand-out at a time
    capped = session.scalar(select(Deployment.max_devices).where(Deployment.id == deployment_id))
    return Mode.WRITE if capped is not None else Mode.SHARE


def _offer(
    session: Session,
    row: DeviceDeployment,
    deployment_id: str,
    poll: Poll,
    *,
    held: Deployment | None = None,
) -> Assignment | Hold | None:
    """Hand `row`'s deployment to its device, or close the row saying why not (None), or
    hold the device back: paused, not started, or its phase not started (Hold.WAIT).
    `held`: the deployment, already locked in SHARE mode and read in this transaction."""
    if held is not None and held.max_devices is None:
        dep: Deployment | None = held  # and `row` was read with it, under the lock
    else:
        mode = Mode.WRITE if held is not None else _mode(session, deployment_id)
        dep = locks.deployment(session, deployment_id, mode)
        # an abort may have closed it since the first read, or a capped deployment's
        # last hand-out (with the lock taken here for writing, so it is final now)
        locks.reread(session, row)
    if dep is None or dep.aborted or row.final or row.claimed is not None:
        return None
    now = utcnow()
    if schedule.ended(dep, now):
        # past its end time: devices not handed it are not any more (nor retried)
        locks.deployment(session, dep.id, Mode.WRITE)
        _finalize(session, row, "skipped" if row.attempts == 0 else "failure")
        return None
    if dep.paused or schedule.not_started(dep, now):
        return Hold.WAIT
    if phases.holding(dep, row):
        if dep.paused or not phases.due(session, dep):
            return Hold.WAIT
        # a start time has passed: start what is due, the first poll to see it decides
        dep = _advance(session, dep.id)
        if dep is None or dep.aborted:
            return None
        if phases.holding(dep, row):
            return Hold.WAIT
    if phases.gated(dep):
        # a pause (a threshold, on another device's report) holds the deployment for
        # writing: take it so too, and see the pause if it came first
        dep = locks.deployment(session, deployment_id, Mode.WRITE)
        if dep is None or dep.aborted:
            return None
        if phases.holding(dep, row):
            return Hold.WAIT
    outcome: str | None = None
    capped = dep.max_devices is not None and row.attempts == 0
    if capped and _claimed(session, dep.id) >= (dep.max_devices or 0):
        outcome = "skipped"
    artifact = None
    choice = None
    # a device that fell back from a delta is sent the full artifact on a retry
    deltas_ok = row.delivery != "fallback" and poll.takes_deltas
    if outcome is None:
        choice = pick_artifact(
            session, dep.artifact_name, poll.device_type, poll.provides, deltas_ok=deltas_ok
        )
        artifact = choice.artifact if choice is not None else None
        if artifact is None:
            outcome = "noartifact"
        elif not dep.force_installation and poll.provides.get("artifact_name") == dep.artifact_name:
            outcome = "already-installed"
        elif not dep.allow_downgrade and (why := downgrade.older(artifact, poll.running)):
            outcome = "skipped"
            row.substate = f"downgrade refused: {why}"
    if outcome is not None or dep.status == "pending":
        # closing a row may finish the deployment, and a first hand-out changes its
        # status: both write the deployment row, so take it for writing first
        locks.deployment(session, dep.id, Mode.WRITE)
    if outcome is not None:
        _finalize(session, row, outcome)
        return None
    assert artifact is not None and choice is not None
    deltas.record(row, choice)
    if deltas_ok:
        delta_jobs.want(
            session, choice, poll.provides
        )  # none for its base yet: made in the background
    row.claimed = utcnow()
    row.attempts += 1
    row.artifact_id = artifact.id
    row.status = "pending"
    row.substate = ""
    if dep.status == "pending":
        dep.status = "inprogress"
    if dep.max_devices is not None and row.attempts == 1:
        _close_over_cap(session, dep)
    return Assignment(dep, artifact, choice.full if choice.full is not artifact else None)


def _claimed(session: Session, deployment_id: str) -> int:
    """Devices that were ever handed this deployment (what max_devices counts)."""
    return (
        session.scalar(
            select(func.count()).where(
                DeviceDeployment.deployment_id == deployment_id, DeviceDeployment.attempts > 0
            )
        )
        or 0
    )


def _close_over_cap(session: Session, dep: Deployment) -> None:
    session.flush()
    if dep.max_devices is not None and _claimed(session, dep.id) >= dep.max_devices:
        session.execute(
            update(DeviceDeployment)
            .where(
                DeviceDeployment.deployment_id == dep.id,
                DeviceDeployment.attempts == 0,
                DeviceDeployment.final.is_(False),
            )
            .values(status="skipped", final=True, finished=utcnow())
            .execution_options(synchronize_session=False)
        )
        if phases.gated(dep) and phases.advance(session, dep):
            abort_rows(session, dep)


def _advance(session: Session, deployment_id: str) -> Deployment | None:
    """Take the decisions due on a phased deployment (phases.advance), and abort it if a
    threshold says so; the deployment, held for writing."""
    dep = locks.deployment(session, deployment_id, Mode.WRITE)
    if dep is not None and phases.advance(session, dep):
        abort_rows(session, dep)
    return dep


def advance(session: Session, deployment_id: str) -> None:
    """A management read found a decision due (phases.due): take it."""
    _advance(session, deployment_id)


def _finalize(session: Session, row: DeviceDeployment, status: str) -> None:
    """Close one device's part, then see whether the deployment is finished. The caller
    holds the deployment in SHARE mode at least; the check takes it for writing."""
    row.status = status
    row.final = True
    row.claimed = None
    row.finished = utcnow()
    session.flush()
    # after the row's UPDATE, not before: two final reports then overlap but for this lock,
    # the check and the commit (the last of them to take it sees every other row closed)
    dep = locks.deployment(session, row.deployment_id, Mode.WRITE)
    if dep is not None and phases.gated(dep) and phases.advance(session, dep):
        abort_rows(session, dep)
        return
    _maybe_finish(session, row.deployment_id)


def _maybe_finish(session: Session, deployment_id: str) -> None:
    # the count and the status change commit together: with the deployment row held
    # for writing, two devices finishing at once cannot both see the other still open
    # one probe of ix_dd_deployment_open, not a count: a count read every row of a 1M-device
    # deployment after each final report (1 report/s at 1M, bench/results/server-scale-*)
    still_open = session.scalar(
        select(DeviceDeployment.id)
        .where(DeviceDeployment.deployment_id == deployment_id, DeviceDeployment.final.is_(False))
        .limit(1)
    )
    if still_open is None:
        dep = session.get(Deployment, deployment_id)
        if dep is not None and dep.status != "finished" and not dynamic.joinable(session, dep):
            dep.status = "finished"
            dep.finished = utcnow()
            webhooks.deployment_finished(session, dep, statistics(session, dep.id))


def expire_due(session: Session, dep: Deployment) -> bool:
    """A cheap read: is `dep` past its end time with rows to close, or with none open?"""
    if dep.status == "finished" or not schedule.ended(dep, utcnow()):
        return False
    waiting = session.scalar(
        select(DeviceDeployment.id)
        .where(
            DeviceDeployment.deployment_id == dep.id,
            DeviceDeployment.final.is_(False),
            DeviceDeployment.claimed.is_(None),
        )
        .limit(1)
    )
    in_flight = session.scalar(
        select(DeviceDeployment.id)
        .where(DeviceDeployment.deployment_id == dep.id, DeviceDeployment.final.is_(False))
        .limit(1)
    )
    return waiting is not None or in_flight is None


def expire(session: Session, deployment_id: str) -> None:
    """Past its end time: close the rows of devices not handed it (`skipped`) and those
    waiting for a retry (`failure`); devices in progress finish. Held for writing; the
    UPDATE's condition is checked again on each row's newest version (as in abort_rows),
    so a device handed it meanwhile keeps it."""
    dep = locks.deployment(session, deployment_id, Mode.WRITE)
    if dep is None or dep.status == "finished" or not schedule.ended(dep, utcnow()):
        return
    for attempted, status in ((False, "skipped"), (True, "failure")):
        session.execute(
            update(DeviceDeployment)
            .where(
                DeviceDeployment.deployment_id == dep.id,
                DeviceDeployment.final.is_(False),
                DeviceDeployment.claimed.is_(None),
                DeviceDeployment.attempts > 0 if attempted else DeviceDeployment.attempts == 0,
            )
            .values(status=status, final=True, finished=utcnow())
            .execution_options(synchronize_session=False)
        )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, DeviceDeployment):
            session.expire(obj)
    if phases.gated(dep) and phases.advance(session, dep):
        abort_rows(session, dep)
        return
    _maybe_finish(session, dep.id)


def _device_row(session: Session, device_id: str, deployment_id: str) -> DeviceDeployment:
    row = session.scalar(
        select(DeviceDeployment).where(
            DeviceDeployment.deployment_id == deployment_id,
            DeviceDeployment.device_id == device_id,
        )
    )
    if row is None:
        raise NotFound(f"deployment {deployment_id} not found for this device")
    return row


def report_status(
    session: Session, device_id: str, deployment_id: str, status: str, substate: str = ""
) -> None:
    if status not in DEVICE_STATUSES:
        raise BadRequest(f"unknown status {status!r}")
    locks.device_only(session, device_id)
    dep = locks.deployment(session, deployment_id, Mode.SHARE)
    if dep is not None and phases.gated(dep) and (status in FINAL_STATUSES or status == "failure"):
        # a phased deployment's thresholds count what this report changes: one at a time.
        # Otherwise the deployment is taken for writing only in _finalize, after the
        # row is written: final reports of one deployment then wait for each other for
        # the finish check and the commit only, not the whole request
        locks.deployment(session, deployment_id, Mode.WRITE)
    row = _device_row(session, device_id, deployment_id)
    if row.status == "aborted":
        raise Conflict(f"deployment {deployment_id} was aborted")
    if row.final or row.claimed is None:
        if row.status == status:
            return  # the client repeats final reports (e.g. failure twice); keep the first
        raise Conflict(f"deployment {deployment_id} is not in progress on this device")
    row.status = status
    row.substate = substate[:4096]
    if status == "failure":
        webhooks.device_failed(session, dep, device_id, row.attempts)
        if dep is not None and row.attempts <= dep.retries and not dep.aborted:
            row.claimed = None  # offered again on the next poll
            return
    if status in FINAL_STATUSES:
        _finalize(session, row, status)


def store_log(
    session: Session, device_id: str, deployment_id: str, messages: list[dict[str, object]]
) -> None:
    row = _device_row(session, device_id, deployment_id)
    row.log = messages


def abort_rows(session: Session, dep: Deployment) -> None:
    """Abort `dep`: rows not past the point of no return close as `aborted`. The caller
    holds it with Mode.ABORT, or with Mode.WRITE for a threshold's abort: then a status
    report may race this, and the condition below is checked again on each row's newest
    version (PostgreSQL re-reads a row an UPDATE waited for), so a device that reached
    `installing` meanwhile finishes, as after any abort."""
    dep.aborted = True
    dep.paused = False
    session.flush()
    session.execute(
        update(DeviceDeployment)
        .where(
            DeviceDeployment.deployment_id == dep.id,
            DeviceDeployment.final.is_(False),
            DeviceDeployment.status.in_(ABORTABLE),
        )
        .values(status="aborted", final=True, claimed=None, finished=utcnow())
        .execution_options(synchronize_session=False)
    )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, DeviceDeployment):
            session.expire(obj)
    _maybe_finish(session, dep.id)


def close_device_deployments(session: Session, device_id: str, status: str) -> None:
    locks.device_only(session, device_id)
    ids = list(
        session.scalars(
            select(DeviceDeployment.deployment_id)
            .join(Deployment, Deployment.id == DeviceDeployment.deployment_id)
            .where(DeviceDeployment.device_id == device_id, DeviceDeployment.final.is_(False))
            # the order next_for_device visits them in: no two transactions lock in a circle
            .order_by(Deployment.created, Deployment.id)
        )
    )
    for deployment_id in ids:
        locks.deployment(session, deployment_id, Mode.WRITE)
        row = _device_row(session, device_id, deployment_id)
        locks.reread(session, row)
        if not row.final:
            _finalize(session, row, status)


def statistics(session: Session, deployment_id: str) -> dict[str, int]:
    stats = dict.fromkeys(STAT_KEYS, 0)
    for status, count in session.execute(
        select(DeviceDeployment.status, func.count())
        .where(DeviceDeployment.deployment_id == deployment_id)
        .group_by(DeviceDeployment.status)
    ):
        stats[status] = count
    return stats
