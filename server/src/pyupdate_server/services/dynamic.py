"""Deployments to dynamic groups: who may join one now (docs/deployments.md §9).

A deployment to a saved filter has no list of devices. A device takes part when, at one
of its deployment checks, it is accepted and matches the filter's terms (as they were
when the deployment was made): then, and only then, it gets its row, in the same write
transaction that hands the deployment out (or closes the row saying why not). So a
device that joins the group while the deployment is open gets it, and one that left
before it was handed it does not.

The membership test reads the device's own row by primary key with the filter as a
condition (services/filters.py, `members`), once per open dynamic deployment: a poll
never scans the fleet. Under the device's row lock (services/locks.py) the inventory,
the group and the status cannot change before the decision commits; a change waits
for it, and the next check sees the change.

Mender's order rule holds: deployments reach a device in the order they were made, so a
dynamic deployment made before the newest deployment the device took part in is not
offered to it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Deployment, DeviceDeployment, utcnow
from pyupdate_server.services import filters, schedule

OPEN = ("pending", "inprogress")


def candidates(
    session: Session, device_id: str, now: dt.datetime | None = None
) -> list[Deployment]:
    """The open dynamic deployments the device may join now, oldest first (it has no
    row in them yet). The caller holds the device's row lock when it acts on them."""
    now = now or utcnow()
    open_deps = [
        d
        for d in session.scalars(
            select(Deployment)
            .where(
                Deployment.dynamic.is_(True),
                Deployment.status.in_(OPEN),
                Deployment.aborted.is_(False),
            )
            .order_by(Deployment.created, Deployment.id)
        )
        if not closed(session, d, now)
    ]
    if not open_deps:
        return []
    ids = [d.id for d in open_deps]
    joined = set(
        session.scalars(
            select(DeviceDeployment.deployment_id).where(
                DeviceDeployment.device_id == device_id, DeviceDeployment.deployment_id.in_(ids)
            )
        )
    )
    newest = session.scalar(
        select(func.max(Deployment.created))
        .join(DeviceDeployment, DeviceDeployment.deployment_id == Deployment.id)
        .where(
            DeviceDeployment.device_id == device_id,
            or_(DeviceDeployment.attempts > 0, DeviceDeployment.final.is_(True)),
        )
    )
    open_deps = [
        d for d in open_deps if d.id not in joined and (newest is None or d.created > newest)
    ]
    groups = {d.id: filters.load_terms(d.filter_terms or []) for d in open_deps}
    hits = filters.members(session, device_id, groups)
    return [d for d in open_deps if d.id in hits]


def closed(session: Session, dep: Deployment, now: dt.datetime | None = None) -> bool:
    """No device may join any more: past its end time, or max_devices were handed it."""
    if schedule.ended(dep, now or utcnow()):
        return True
    if dep.max_devices is None:
        return False
    handed = session.scalar(
        select(func.count()).where(
            DeviceDeployment.deployment_id == dep.id, DeviceDeployment.attempts > 0
        )
    )
    return (handed or 0) >= dep.max_devices


def joinable(session: Session, dep: Deployment) -> bool:
    """A dynamic deployment stays open, even with every row final, while devices may
    still join it (Mender: until a person stops it or it reaches max_devices)."""
    return dep.dynamic and not dep.aborted and not closed(session, dep)


def may_join(db: Database, device_id: str) -> bool:
    """A read: could the device's next check join a dynamic deployment? (then the
    decision is taken again under the write lock)"""
    with db.read() as session:
        return bool(candidates(session, device_id))
