"""The audit log: every management write and every login, in the write's own transaction.

An entry says who (the user, and the personal access token if one was used), what (an
action on an object of a type, with the object's id and what names it), when, from where
(the client address as uvicorn resolved it, honouring forwarded_allow_ips), and, where it
matters, the state before and after (a device's status, a user's role, a deployment's
status). It is written in the same transaction as the change, so a change that rolls
back leaves no entry and an entry never describes a change that did not happen; only a
failed login, which changes nothing, is written on its own.

Bounded: entries older than `audit_retention_days` are deleted on a later write (at most
once a minute per process; there is no background thread), and a query returns at most
MAX_PER_PAGE entries. Shape: Mender's audit log API (docs/management-api.md, "Audit log").
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pyupdate_server.db.models import AuditLog, Deployment, utcnow

ACTIONS = (
    "create",
    "update",
    "delete",
    "login",
    "login_failed",
    "accept",
    "reject",
    "decommission",
    "pause",
    "resume",
    "abort",
)
OBJECT_TYPES = ("user", "token", "device", "artifact", "deployment", "filter", "integration")
MAX_PER_PAGE = 500
PRUNE_EVERY = 60.0  # seconds between two prunes in one process
# PUT .../deployments/{id}/status bodies and the actions they are recorded as
STATUS_ACTIONS = {"aborted": "abort", "paused": "pause", "inprogress": "resume"}


class Actor(Protocol):
    """Who acts: api/deps.py's UserIdentity, or SYSTEM for the command line."""

    @property
    def id(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def token_id(self) -> str | None: ...
    @property
    def address(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LocalActor:
    """Someone at the server's command line (`pyupdate-server user create`)."""

    id: str = ""
    email: str = "pyupdate-server command line"
    token_id: str | None = None
    address: str = "local"


SYSTEM = LocalActor()


class Auditor:
    """Writes entries and prunes old ones; one per server process (ServerState.audit)."""

    def __init__(self, retention_days: int) -> None:
        self.retention = dt.timedelta(days=retention_days)
        self._next_prune = 0.0

    def record(
        self,
        session: Session,
        actor: Actor,
        action: str,
        object_type: str,
        object_id: str,
        *,
        names: dict[str, object] | None = None,
        change: str = "",
        before: dict[str, object] | None = None,
        after: dict[str, object] | None = None,
    ) -> None:
        """Add one entry to `session`'s transaction. `names`: what identifies the object
        for a person, e.g. {"name": ..., "artifact_name": ...} for a deployment."""
        assert action in ACTIONS and object_type in OBJECT_TYPES, (action, object_type)
        session.add(
            AuditLog(
                time=utcnow(),
                actor_type="user",
                actor_id=actor.id,
                actor_email=actor.email[:256],
                token_id=actor.token_id,
                address=actor.address[:64],
                action=action,
                object_type=object_type,
                object_id=object_id[:256],
                object_data={object_type: names} if names else {},
                change=change,
                before=before,
                after=after,
            )
        )
        self.prune(session)

    def deployment(
        self,
        session: Session,
        actor: Actor,
        action: str,
        deployment_id: str,
        before: dict[str, object] | None = None,
    ) -> None:
        """An entry for a deployment created (`create`) or set to a status (`aborted`,
        `paused`, `inprogress`: recorded as abort, pause, resume), with its state after
        and, given `before` (deployment_state before the change), before."""
        after = deployment_state(session, deployment_id)
        dep = session.get(Deployment, deployment_id)
        names = {"name": dep.name, "artifact_name": dep.artifact_name} if dep else None
        action = STATUS_ACTIONS.get(action, action)
        if action == "create" and dep is not None:
            change = f"deployment {dep.name} of {dep.artifact_name} to {dep.target} created"
        else:
            was = before.get("status") if before else None
            change = f"{action} deployment {names['name'] if names else deployment_id}: "
            change += f"{was} -> {after.get('status') if after else None}"
        self.record(
            session,
            actor,
            action,
            "deployment",
            deployment_id,
            names=names,
            change=change,
            before=before,
            after=after,
        )

    def group(
        self, session: Session, actor: Actor, device_id: str, before: str | None, after: str | None
    ) -> None:
        """An entry for a device moved into, between or out of static groups."""
        self.record(
            session,
            actor,
            "update",
            "device",
            device_id,
            change=f"group of device {device_id}: {before or '(none)'} -> {after or '(none)'}",
            before={"group": before},
            after={"group": after},
        )

    def prune(self, session: Session) -> int:
        """Delete entries past the retention, at most once per PRUNE_EVERY seconds."""
        now = time.monotonic()
        if now < self._next_prune:
            return 0
        self._next_prune = now + PRUNE_EVERY
        cutoff = utcnow() - self.retention
        result = session.execute(delete(AuditLog).where(AuditLog.time < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def deployment_state(session: Session, deployment_id: str) -> dict[str, object] | None:
    """What the audit log keeps of a deployment before and after a change."""
    dep = session.get(Deployment, deployment_id)
    if dep is None:
        return None
    status = "paused" if dep.paused and dep.status != "finished" else dep.status
    return {
        "status": status,
        "aborted": dep.aborted,
        "device_count": dep.device_count,
        "target": dep.target,
    }


@dataclass(frozen=True, slots=True)
class Query:
    """Mender's filters (all optional); `start`/`end` are inclusive, naive UTC."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    object_type: str | None = None
    object_id: str | None = None
    actor_id: str | None = None
    actor_email: str | None = None
    action: str | None = None
    newest_first: bool = True


def find(session: Session, query: Query, page: int, per_page: int) -> tuple[list[AuditLog], int]:
    """One page of matching entries and how many match in all."""
    per_page = min(per_page, MAX_PER_PAGE)
    where = []
    if query.start is not None:
        where.append(AuditLog.time >= query.start)
    if query.end is not None:
        where.append(AuditLog.time <= query.end)
    for column, value in (
        (AuditLog.object_type, query.object_type),
        (AuditLog.object_id, query.object_id),
        (AuditLog.actor_id, query.actor_id),
        (AuditLog.actor_email, query.actor_email),
        (AuditLog.action, query.action),
    ):
        if value is not None:
            where.append(column == value)
    order = (AuditLog.time.desc(), AuditLog.id.desc()) if query.newest_first else (
        AuditLog.time, AuditLog.id)  # fmt: skip
    rows = session.scalars(
        select(AuditLog)
        .where(*where)
        .order_by(*order)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    total = session.scalar(select(func.count()).select_from(AuditLog).where(*where)) or 0
    return list(rows), total
