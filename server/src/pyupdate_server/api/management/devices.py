"""devauth v2: list devices, accept/reject auth sets, preauthorize, decommission.

Every write goes into the audit log with the device's status before and after."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyupdate_server.api.deps import CurrentUser, State, UserIdentity
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.auth.device_signatures import normalize_pubkey
from pyupdate_server.db.models import AuthSet, Device
from pyupdate_server.errors import NotFound
from pyupdate_server.services import admission

router = APIRouter(prefix="/api/management/v2/devauth", tags=["devices"])

DeviceStatus = Literal[
    "pending", "accepted", "rejected", "preauthorized", "noauth", "decommissioned"
]


class AuthSetOut(BaseModel):
    id: str
    pubkey: str
    identity_data: dict[str, object]
    status: str
    ts: Timestamp


class DeviceOut(BaseModel):
    id: str
    identity_data: dict[str, object]
    status: str
    created_ts: Timestamp
    updated_ts: Timestamp
    auth_sets: list[AuthSetOut]
    decommissioning: bool = False


def device_out(session: Session, device: Device) -> DeviceOut:
    identity = json.loads(device.identity)
    sets = session.scalars(
        select(AuthSet).where(AuthSet.device_id == device.id).order_by(AuthSet.created)
    )
    return DeviceOut(
        id=device.id,
        identity_data=identity,
        status=device.status,
        created_ts=device.created,
        updated_ts=device.updated,
        auth_sets=[
            AuthSetOut(
                id=a.id, pubkey=a.pubkey, identity_data=identity, status=a.status, ts=a.created
            )
            for a in sets
        ],
    )


PageQ = Annotated[int, Query(ge=1, le=1_000_000)]
PerPageQ = Annotated[int, Query(ge=1, le=500)]


@router.get("/devices")
def list_devices(
    _: CurrentUser,
    state: State,
    response: Response,
    status: DeviceStatus | None = None,
    page: PageQ = 1,
    per_page: PerPageQ = 20,
) -> list[DeviceOut]:
    with state.db.read() as session:
        query = select(Device)
        count = select(func.count()).select_from(Device)
        if status is not None:
            query = query.where(Device.status == status)
            count = count.where(Device.status == status)
        rows = session.scalars(
            query.order_by(Device.created, Device.id).offset((page - 1) * per_page).limit(per_page)
        )
        out = [device_out(session, d) for d in rows]
        response.headers["X-Total-Count"] = str(session.scalar(count))
        return out


class Count(BaseModel):
    count: int


@router.get("/devices/count")
def count_devices(_: CurrentUser, state: State, status: DeviceStatus | None = None) -> Count:
    with state.db.read() as session:
        query = select(func.count()).select_from(Device)
        if status is not None:
            query = query.where(Device.status == status)
        return Count(count=session.scalar(query) or 0)


@router.get("/devices/{device_id}")
def get_device(device_id: str, _: CurrentUser, state: State) -> DeviceOut:
    with state.db.read() as session:
        return device_out(session, admission.get_device(session, device_id))


def _status_of(session: Session, device_id: str, auth_id: str | None = None) -> dict[str, object]:
    """What the audit log keeps of a device before and after a change."""
    device = session.get(Device, device_id)
    out: dict[str, object] = {"status": device.status if device is not None else None}
    if auth_id is not None:
        auth = session.get(AuthSet, auth_id)
        out["auth_status"] = auth.status if auth is not None else None
    return out


def _audit(
    state: State,
    session: Session,
    user: UserIdentity,
    action: str,
    device_id: str,
    before: dict[str, object] | None,
    auth_id: str | None = None,
) -> None:
    after = _status_of(session, device_id, auth_id)
    device = session.get(Device, device_id)
    names = {"identity_data": json.loads(device.identity)} if device is not None else None
    what = f"auth set {auth_id} of device {device_id}" if auth_id else f"device {device_id}"
    old = "" if before is None else f": {before.get('auth_status', before['status'])}"
    new = f" -> {after.get('auth_status', after['status'])}"
    state.audit.record(
        session,
        user,
        action,
        "device",
        device_id,
        names=names,
        change=f"{action} {what}{old}{new}",
        before=before,
        after=after,
    )


@router.delete("/devices/{device_id}", status_code=204)
def decommission_device(device_id: str, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        before = _status_of(session, device_id)
        admission.decommission(session, device_id)
        _audit(state, session, user, "decommission", device_id, before)
    return Response(status_code=204)


class AuthStatus(BaseModel):
    status: Literal["accepted", "rejected", "pending"]


@router.put("/devices/{device_id}/auth/{auth_id}/status", status_code=204)
def set_auth_status(
    device_id: str, auth_id: str, body: AuthStatus, user: CurrentUser, state: State
) -> Response:
    action = {"accepted": "accept", "rejected": "reject", "pending": "update"}[body.status]
    with state.db.write() as session:
        before = _status_of(session, device_id, auth_id)
        admission.set_auth_status(session, device_id, auth_id, body.status)
        _audit(state, session, user, action, device_id, before, auth_id)
    return Response(status_code=204)


class AuthStatusOut(BaseModel):
    status: str


@router.get("/devices/{device_id}/auth/{auth_id}/status")
def get_auth_status(device_id: str, auth_id: str, _: CurrentUser, state: State) -> AuthStatusOut:
    with state.db.read() as session:
        auth = session.get(AuthSet, auth_id)
        if auth is None or auth.device_id != device_id:
            raise NotFound(f"auth set {auth_id} of device {device_id} not found")
        return AuthStatusOut(status=auth.status)


@router.delete("/devices/{device_id}/auth/{auth_id}", status_code=204)
def delete_auth_set(device_id: str, auth_id: str, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        before = _status_of(session, device_id, auth_id)
        admission.delete_auth_set(session, device_id, auth_id)
        _audit(state, session, user, "delete", device_id, before, auth_id)
    return Response(status_code=204)


class Preauth(BaseModel):
    identity_data: dict[str, str | list[str]] = Field(min_length=1)
    pubkey: str = Field(min_length=1, max_length=16384)
    force: bool = False


@router.post("/devices", status_code=201, response_class=Response)
def preauthorize(body: Preauth, user: CurrentUser, state: State) -> Response:
    identity = admission.canonical_identity(body.identity_data)
    pubkey = normalize_pubkey(body.pubkey)
    with state.db.write() as session:
        existing = session.scalar(select(Device).where(Device.identity == identity))
        before = {"status": existing.status} if existing is not None else None
        device = admission.preauthorize(session, identity, pubkey, body.force)
        device_id = device.id
        _audit(state, session, user, "create", device_id, before)
    response = Response(status_code=201)
    response.headers["Location"] = f"{router.prefix}/devices/{device_id}"
    return response
