"""Row locks that keep the rules true with several server processes on PostgreSQL.

On SQLite every write transaction already runs alone (BEGIN IMMEDIATE): there is
nothing to lock and nothing to read again, and these functions cost no query. On
PostgreSQL writers run side by side,
and a decision holds only if what it read cannot change before it commits:

* `device`: FOR NO KEY UPDATE on the device row. One device's polls, status reports,
  inventory updates and admission decisions run one after the other, so a device is
  never handed two deployments and a key is accepted once.
* `deployment(..., SHARE)`: FOR KEY SHARE. Hand-outs and status reports of many devices
  run side by side; an abort (FOR UPDATE) waits for them and they wait for it.
* `deployment(..., WRITE)`: FOR NO KEY UPDATE, taken before finishing a device's part
  (the "last one finishes the deployment" count) or handing out a capped deployment
  (the `max_devices` count): those counts are taken one transaction at a time.
* `deployment(..., ABORT)`: FOR UPDATE, excluding all of the above.
* `all_users`: FOR UPDATE on every user row, so the last-user and last-admin rules
  count users that no concurrent delete or demotion is changing: of two deletes (or
  demotions) of the last two admins, the second waits for the first, then sees one
  left and refuses.

Lock order, always: device row, then deployment row, then device_deployments rows.
Every path that changes a device_deployments row holds its deployment's lock first,
so two transactions never wait for each other in a circle.
"""

from __future__ import annotations

import enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyupdate_server.db import dialect
from pyupdate_server.db.models import Deployment, Device, User


class Mode(enum.Enum):
    SHARE = "share"
    WRITE = "write"
    ABORT = "abort"


_FOR = {
    Mode.SHARE: {"read": True, "key_share": True},  # FOR KEY SHARE
    Mode.WRITE: {"key_share": True},  # FOR NO KEY UPDATE
    Mode.ABORT: {},  # FOR UPDATE
}


def device(session: Session, device_id: str) -> Device | None:
    """The device, locked and freshly read (None if it does not exist)."""
    if dialect.serializes_writers(session):
        return session.get(Device, device_id)
    return session.scalar(
        select(Device)
        .where(Device.id == device_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


def device_inventory(session: Session, device_id: str) -> dict | None:
    """The device's inventory, its row locked as `device` locks it (None if it does not
    exist). One column through Core: a hand-out needs nothing else of the device, and
    building the ORM object was a tenth of a hand-out's server CPU."""
    stmt = select(Device.inventory).where(Device.id == device_id)
    if not dialect.serializes_writers(session):
        stmt = stmt.with_for_update(key_share=True)
    return session.connection().execute(stmt).scalar_one_or_none()


def device_only(session: Session, device_id: str) -> None:
    """The device's row locked as `device` locks it, nothing read: for a status report or
    a removal, which change the device's deployments and not the device."""
    if not dialect.serializes_writers(session):
        stmt = select(Device.id).where(Device.id == device_id).with_for_update(key_share=True)
        session.connection().execute(stmt)


def deployment(session: Session, deployment_id: str, mode: Mode) -> Deployment | None:
    """The deployment, locked in `mode` and freshly read (None if it does not exist)."""
    if dialect.serializes_writers(session):
        return session.get(Deployment, deployment_id)
    return session.scalar(
        select(Deployment)
        .where(Deployment.id == deployment_id)
        .with_for_update(**_FOR[mode])
        .execution_options(populate_existing=True)
    )


def reread(session: Session, obj: object) -> None:
    """Read `obj` again after taking a lock: what was read before may have changed."""
    if not dialect.serializes_writers(session):
        session.refresh(obj)


def all_users(session: Session) -> list[str]:
    """Every user's id, the rows locked until the transaction ends (a handful of rows)."""
    stmt = select(User.id)
    if not dialect.serializes_writers(session):
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))
