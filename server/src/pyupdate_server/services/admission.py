"""Device admission: auth sets, their states, and which token a device gets.

Rules (docs/device-api.md, "Authentication"):
* a device is identified by its identity data; each (device, pubkey) pair is an auth set;
* the first request of an unknown identity or key creates a pending auth set (401);
* a preauthorized auth set becomes accepted on the device's first request;
* only an accepted auth set gets a token; accepting one rejects the device's other
  accepted auth set (one key at a time);
* rejecting or decommissioning revokes the device's tokens (they name the auth set).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pyupdate_server import limits
from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import AuthSet, Device, utcnow
from pyupdate_server.errors import BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized
from pyupdate_server.services import locks, throttle, webhooks

AUTH_STATES = ("pending", "accepted", "rejected", "preauthorized")
DEVICE_STATES = (*AUTH_STATES, "noauth", "decommissioned")


_SCALAR = (str, int, float, bool)


def canonical_identity(id_data: object) -> str:
    """The identity as canonical JSON; `id_data` is a JSON string (Mender) or an object.

    Identity attributes are flat (docs/device-api.md): scalars or lists of scalars, at
    most MAX_IDENTITY_ATTRS of them and MAX_IDENTITY bytes in all (docs/security.md).
    """
    if isinstance(id_data, str):
        if len(id_data) > limits.MAX_IDENTITY * 4:
            raise BadRequest(f"id_data over {limits.MAX_IDENTITY} bytes")
        try:
            id_data = json.loads(id_data)
        except json.JSONDecodeError:
            raise BadRequest("id_data is not valid JSON") from None
        except RecursionError:
            raise BadRequest("id_data nests too deep") from None
    if not isinstance(id_data, dict) or not id_data:
        raise BadRequest("id_data must be a non-empty JSON object")
    if len(id_data) > limits.MAX_IDENTITY_ATTRS:
        raise BadRequest(f"id_data has over {limits.MAX_IDENTITY_ATTRS} attributes")
    for name, value in id_data.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, _SCALAR) for v in items):
            raise BadRequest(f"id_data attribute {name[:64]!r} must be a string or strings")
    text = json.dumps(id_data, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > limits.MAX_IDENTITY:
        raise BadRequest(f"id_data over {limits.MAX_IDENTITY} bytes")
    return text


NewPendingGuard = Callable[[Session], None]


def pending_guard(source: str, per_source: int, window: int, ceiling: int) -> NewPendingGuard:
    """Called before a request makes a pending device: at most `per_source`
    per address per `window` seconds, and never more than `ceiling` pending devices.

    Unauthenticated callers make these rows; without a bound they fill the database and
    the device list (docs/security.md, "Limits").
    """

    def guard(session: Session) -> None:
        pending = session.scalar(
            select(func.count()).select_from(Device).where(Device.status == "pending")
        )
        if (pending or 0) >= ceiling:
            raise TooManyRequests(
                f"{ceiling} devices are pending already: accept, reject or remove some", 60
            )
        throttle.hit(session, f"pending-src:{source}", per_source, window,
                     "new devices from this address")  # fmt: skip

    return guard


@dataclass(frozen=True, slots=True)
class Admission:
    device_id: str
    auth_set_id: str
    accepted: bool


def refresh_status(session: Session, device: Device) -> None:
    """A device's status follows its best auth set; decommissioned is sticky."""
    if device.status == "decommissioned":
        return
    previous = device.status
    states = set(
        session.scalars(select(AuthSet.status).where(AuthSet.device_id == device.id)).all()
    )
    for state in ("accepted", "preauthorized", "pending", "rejected"):
        if state in states:
            device.status = state
            break
    else:
        device.status = "noauth"
    device.updated = utcnow()
    webhooks.device_status(session, device, previous)


def submit_auth_request(
    session: Session, identity: str, pubkey: str, guard: NewPendingGuard | None = None
) -> Admission:
    device = session.scalar(select(Device).where(Device.identity == identity))
    if device is None:
        if guard is not None:
            guard(session)
        device = _insert_device(session, identity, "pending") or session.scalar(
            select(Device).where(Device.identity == identity)
        )
        assert device is not None  # inserted, or made by the request that won
    device = _locked_device(session, device.id)
    if device.status == "decommissioned":
        raise Unauthorized("device is decommissioned")
    auth = session.scalar(
        select(AuthSet).where(AuthSet.device_id == device.id, AuthSet.pubkey == pubkey)
    )
    if auth is None:
        keys = session.scalar(
            select(func.count()).select_from(AuthSet).where(AuthSet.device_id == device.id)
        )
        if (keys or 0) >= limits.MAX_AUTH_SETS:
            raise Conflict(
                f"device {device.id} has {limits.MAX_AUTH_SETS} keys already: remove some"
            )
        auth = AuthSet(device_id=device.id, pubkey=pubkey, status="pending")
        session.add(auth)
        session.flush()
        refresh_status(session, device)
    elif auth.status == "preauthorized":
        _accept(session, device, auth)
    return Admission(device.id, auth.id, auth.status == "accepted")


def _accept(session: Session, device: Device, auth: AuthSet) -> None:
    for other in session.scalars(
        select(AuthSet).where(AuthSet.device_id == device.id, AuthSet.id != auth.id)
    ):
        if other.status == "accepted":
            other.status = "rejected"
    auth.status = "accepted"
    refresh_status(session, device)


def get_device(session: Session, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"device {device_id} not found")
    return device


def _locked_device(session: Session, device_id: str) -> Device:
    """The device for a decision about it: one decision per device at a time."""
    device = locks.device(session, device_id)
    if device is None:
        raise NotFound(f"device {device_id} not found")
    return device


def _insert_device(session: Session, identity: str, status: str) -> Device | None:
    """A new device for `identity`, or None when a concurrent request made it first.

    Two first requests of one identity (two server processes on PostgreSQL) both find
    no device; the unique identity lets one insert, and the other uses its row.
    """
    try:
        with session.begin_nested():
            device = Device(identity=identity, status=status, inventory={})
            session.add(device)
    except IntegrityError:
        return None
    return device


def set_auth_status(session: Session, device_id: str, auth_id: str, status: str) -> None:
    if status not in ("accepted", "rejected", "pending"):
        raise BadRequest(f"status must be accepted, rejected or pending, not {status!r}")
    device = _locked_device(session, device_id)
    if device.status == "decommissioned":
        raise Conflict(f"device {device_id} is decommissioned")
    auth = session.get(AuthSet, auth_id)
    if auth is None or auth.device_id != device_id:
        raise NotFound(f"auth set {auth_id} of device {device_id} not found")
    if status == "accepted":
        _accept(session, device, auth)
    else:
        auth.status = status
        refresh_status(session, device)


def preauthorize(session: Session, identity: str, pubkey: str, force: bool = False) -> Device:
    device = session.scalar(select(Device).where(Device.identity == identity))
    if device is None:
        device = _insert_device(session, identity, "preauthorized")
        if device is None:
            raise Conflict("a device with this identity already exists")
    elif not force:
        raise Conflict("a device with this identity already exists")
    elif device.status == "decommissioned":
        device.status = "noauth"
    auth = session.scalar(
        select(AuthSet).where(AuthSet.device_id == device.id, AuthSet.pubkey == pubkey)
    )
    if auth is None:
        session.add(AuthSet(device_id=device.id, pubkey=pubkey, status="preauthorized"))
    elif not force:
        raise Conflict("this auth set already exists")
    else:
        auth.status = "preauthorized"
    session.flush()
    refresh_status(session, device)
    return device


def decommission(session: Session, device_id: str) -> None:
    """Revoke every key and close the device's open deployments."""
    device = _locked_device(session, device_id)
    for auth in session.scalars(select(AuthSet).where(AuthSet.device_id == device_id)):
        auth.status = "rejected"
    previous = device.status
    device.status = "decommissioned"
    device.updated = utcnow()
    webhooks.device_status(session, device, previous)
    from pyupdate_server.services.rollout import close_device_deployments

    close_device_deployments(session, device_id, "decommissioned")


def delete_auth_set(session: Session, device_id: str, auth_id: str) -> None:
    device = _locked_device(session, device_id)
    auth = session.get(AuthSet, auth_id)
    if auth is None or auth.device_id != device_id:
        raise NotFound(f"auth set {auth_id} of device {device_id} not found")
    session.delete(auth)
    session.flush()
    refresh_status(session, device)


def delete_device(session: Session, device_id: str) -> None:
    device = _locked_device(session, device_id)
    from pyupdate_server.services.rollout import close_device_deployments

    close_device_deployments(session, device_id, "decommissioned")
    if device.status != "decommissioned":
        webhooks.emit(session, "device-decommissioned", {"id": device_id})
    session.delete(device)


_AUTHORIZED_SQL = (
    "SELECT 1 FROM auth_sets a JOIN devices d ON d.id = a.device_id "
    "WHERE a.id = :a AND a.device_id = :d AND a.status = 'accepted' AND d.status = 'accepted'"
)


async def is_authorized(db: Database, device_id: str, auth_set_id: str) -> bool:
    """The polling path's check: one indexed query, no ORM objects."""
    return await db.aquick(_AUTHORIZED_SQL, {"a": auth_set_id, "d": device_id}) is not None


def authorized_device(session: Session, device_id: str, auth_set_id: str) -> Device:
    """The device behind a device token, or 401 if the token was revoked since."""
    auth = session.get(AuthSet, auth_set_id)
    if auth is None or auth.device_id != device_id or auth.status != "accepted":
        raise Unauthorized("device token revoked")
    device = session.get(Device, device_id)
    if device is None or device.status != "accepted":
        raise Unauthorized("device is not accepted")
    return device
