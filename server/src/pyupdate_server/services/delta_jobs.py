"""Deltas the server makes itself: which to make, claiming one, recording what came of it,
keeping the cache bounded (docs/deployments.md, "Delta updates").

A job is one (new artifact, old image checksum) pair, a unique row: asked for by a new
deployment (`plan`, the most common images among its devices) or by a hand-out that found
no delta for a device's image (`want`). The delta worker of each server process
(delta_worker.py) claims one under a lease, as the webhook outbox does
(services/outbox.py): on PostgreSQL the claim skips rows another transaction has locked
(FOR UPDATE SKIP LOCKED), on SQLite it is one short write transaction; a process that
dies leaves its lease to run out, and another takes the job over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pyupdate_server.db import dialect
from pyupdate_server.db.models import Artifact, DeltaJob, Device, DeviceDeployment, utcnow
from pyupdate_server.services.deltas import CHECKSUM, Choice, is_delta

MAX_ATTEMPTS = 3  # claims of one job: a job whose process died this often is failed
MAX_ERROR = 300  # characters of an error kept: one line
LEASE_MARGIN = 60  # seconds past the job's timeout before another process takes it over
OPEN = ("queued", "running")

DUE_SQL = (
    "SELECT 1 FROM delta_jobs WHERE status = 'queued' "
    "OR (status = 'running' AND claimed_until < :now) LIMIT 1"
)


def _checksum(value: object) -> str | None:
    text = str(value).strip().lower() if value is not None else ""
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text
    return None


def enqueue(session: Session, new_artifact_id: str, old_checksum: str) -> None:
    """A job for the pair unless there is one: INSERT .. ON CONFLICT DO NOTHING, so two
    processes asking at once make one row and neither transaction fails."""
    stmt = dialect.insert(session, DeltaJob.__table__).values(
        new_artifact_id=new_artifact_id,
        old_checksum=old_checksum,
        status="queued",
        error="",
        attempts=0,
        created=utcnow(),
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["new_artifact_id", "old_checksum"]))


def want(session: Session, choice: Choice, provides: Mapping[str, object]) -> None:
    """At a hand-out of a full artifact to a device that accepts deltas: if no job exists
    for its image yet, queue one (one probe of the unique index in the common case)."""
    full = choice.full
    if full is None or choice.artifact is not full or not is_rootfs(full):
        return
    old = _checksum(provides.get(CHECKSUM))
    if old is None or old == _checksum(full.provides.get(CHECKSUM)):
        return
    known = session.scalar(
        select(DeltaJob.id).where(DeltaJob.new_artifact_id == full.id, DeltaJob.old_checksum == old)
    )
    if known is None:
        enqueue(session, full.id, old)


def plan(session: Session, deployment_id: str, artifact_name: str, bases: int) -> int:
    """At creation: queue jobs for the `bases` most common images among the deployment's
    devices that run pyupdate (a delta is no use to a Mender client); the jobs queued."""
    image = Device.inventory[CHECKSUM].as_string()
    agent = Device.inventory["pyupdate_version"].as_string()
    common = session.execute(
        select(image, func.count())
        .select_from(DeviceDeployment)
        .join(Device, Device.id == DeviceDeployment.device_id)
        .where(
            DeviceDeployment.deployment_id == deployment_id,
            image.is_not(None),
            agent.is_not(None),
        )
        .group_by(image)
        .order_by(func.count().desc(), image)
        .limit(bases)
    ).all()
    fulls = [
        a
        for a in session.scalars(
            select(Artifact).where(Artifact.name == artifact_name).order_by(Artifact.created.desc())
        )
        if is_rootfs(a)
    ]
    queued = 0
    for value, _ in common:
        old = _checksum(value)
        if old is None:
            continue
        for new in fulls:
            if old != _checksum(new.provides.get(CHECKSUM)) and base_for(session, new, old):
                enqueue(session, new.id, old)
                queued += 1
    return queued


def is_rootfs(artifact: Artifact) -> bool:
    """What a delta is made from and to: one full root filesystem image."""
    return list(artifact.payload_types or []) == ["rootfs-image"]


def base_for(session: Session, new: Artifact, old_checksum: str) -> Artifact | None:
    """The full artifact whose image is `old_checksum`, for the same device types as
    `new` (the newest, if several); artifacts are few, so they are read and compared
    here rather than by a JSON query each engine spells differently."""
    wanted = sorted(new.device_types)
    for artifact in session.scalars(select(Artifact).order_by(Artifact.created.desc())):
        if (
            is_rootfs(artifact)
            and _checksum(artifact.provides.get(CHECKSUM)) == old_checksum
            and sorted(artifact.device_types) == wanted
        ):
            return artifact
    return None


def existing_delta(session: Session, new: Artifact, old_checksum: str) -> Artifact | None:
    """A delta from `old_checksum` to `new`'s name and device types the server holds
    already: uploaded by CI, or made before."""
    for artifact in session.scalars(select(Artifact).where(Artifact.name == new.name)):
        wanted = artifact.depends.get(CHECKSUM)
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if (
            is_delta(artifact)
            and old_checksum in [str(a) for a in allowed]
            and sorted(artifact.device_types) == sorted(new.device_types)
        ):
            return artifact
    return None


@dataclass(frozen=True, slots=True)
class Claim:
    """A job one process holds: what to make it from and to."""

    id: int
    new_artifact_id: str
    old_checksum: str
    attempt: int


def claim(session: Session, timeout: int, now: dt.datetime | None = None) -> Claim | None:
    """Lease one due job (queued, or running under a lease that ran out); the caller's
    write transaction commits the lease before the work starts."""
    now = now or utcnow()
    stmt = (
        select(DeltaJob)
        .where(
            (DeltaJob.status == "queued")
            | ((DeltaJob.status == "running") & (DeltaJob.claimed_until < now))
        )
        .order_by(DeltaJob.id)
        .limit(1)
    )
    if not dialect.serializes_writers(session):
        stmt = stmt.with_for_update(skip_locked=True)
    job = session.scalar(stmt)
    if job is None:
        return None
    if job.attempts >= MAX_ATTEMPTS:
        _close(job, "failed", "no result: the server process making it stopped", now)
        return None
    job.attempts += 1
    job.status = "running"
    job.claimed_until = now + dt.timedelta(seconds=timeout + LEASE_MARGIN)
    return Claim(job.id, job.new_artifact_id, job.old_checksum, job.attempts)


def _close(job: DeltaJob, status: str, error: str, now: dt.datetime | None = None) -> None:
    job.status = status
    job.error = " ".join(error.split())[:MAX_ERROR]  # one line, however the error read
    job.claimed_until = None
    job.finished = now or utcnow()


def _held(session: Session, claim: Claim) -> DeltaJob | None:
    """The job, if this claim still holds it (a lease that ran out may have passed on)."""
    job = session.get(DeltaJob, claim.id)
    if job is None or job.status != "running" or job.attempts != claim.attempt:
        return None
    return job


def finish(
    session: Session,
    claim: Claim,
    status: str,
    *,
    error: str = "",
    old_artifact_id: str | None = None,
    delta: Artifact | None = None,
) -> bool:
    """Record what came of a claim: done (with its delta), not_smaller, skipped or failed;
    False when the claim was lost meanwhile (the caller then drops what it made)."""
    job = _held(session, claim)
    if job is None:
        return False
    job.old_artifact_id = old_artifact_id
    if delta is not None:
        job.delta_artifact_id = delta.id
        job.delta_size = delta.size
    _close(job, status, error)
    return True


def release(session: Session, claim: Claim) -> None:
    """Give a claim back unfinished (the server stops): queued again, the attempt not
    counted."""
    job = _held(session, claim)
    if job is not None:
        job.status = "queued"
        job.attempts -= 1
        job.claimed_until = None


def evict(session: Session, cache_bytes: int, keep: str | None = None) -> list[str]:
    """Generated deltas over `cache_bytes` in all, oldest first, and their jobs (so a
    later hand-out may ask for one again): their blobs, for the caller to delete after
    the commit. A delta a device is being sent stays, and so does `keep` (just made)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Artifact.size), 0)).where(Artifact.generated.is_(True))
    )
    over = int(total or 0) - cache_bytes
    blobs: list[str] = []
    if over <= 0:
        return blobs
    for artifact in session.scalars(
        select(Artifact).where(Artifact.generated.is_(True)).order_by(Artifact.created, Artifact.id)
    ):
        if over <= 0:
            break
        if artifact.id == keep or _in_flight(session, artifact.id):
            continue
        session.execute(delete(DeltaJob).where(DeltaJob.delta_artifact_id == artifact.id))
        blobs.append(artifact.blob)
        over -= artifact.size
        session.delete(artifact)
    session.flush()
    return blobs


def _in_flight(session: Session, artifact_id: str) -> bool:
    return (
        session.scalar(
            select(DeviceDeployment.id)
            .where(
                DeviceDeployment.artifact_id == artifact_id,
                DeviceDeployment.final.is_(False),
                DeviceDeployment.claimed.is_not(None),
            )
            .limit(1)
        )
        is not None
    )


def jobs_for(session: Session, artifact_name: str) -> list[DeltaJob]:
    """The jobs for the artifacts of a name, newest first (the deployment's view)."""
    return list(
        session.scalars(
            select(DeltaJob)
            .join(Artifact, Artifact.id == DeltaJob.new_artifact_id)
            .where(Artifact.name == artifact_name)
            .order_by(DeltaJob.id.desc())
            .limit(50)
        )
    )
