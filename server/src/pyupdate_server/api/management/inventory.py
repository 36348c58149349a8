"""Inventory v1: devices with their attributes, filters, static groups."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from pyupdate_server.api.deps import CurrentUser, State
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.db.models import Device
from pyupdate_server.errors import NotFound
from pyupdate_server.services.admission import get_device

router = APIRouter(prefix="/api/management/v1/inventory", tags=["inventory"])
_RESERVED = {"page", "per_page", "sort", "has_group", "group", "id"}
_GROUP = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class AttributeOut(BaseModel):
    name: str
    value: object
    scope: str


class InventoryDevice(BaseModel):
    id: str
    attributes: list[AttributeOut]
    updated_ts: Timestamp


def _out(device: Device) -> InventoryDevice:
    attrs = [AttributeOut(name=k, value=v, scope="inventory") for k, v in device.inventory.items()]
    attrs.append(AttributeOut(name="status", value=device.status, scope="identity"))
    if device.group:
        attrs.append(AttributeOut(name="group", value=device.group, scope="system"))
    return InventoryDevice(id=device.id, attributes=attrs, updated_ts=device.updated)


def _matches(device: Device, filters: dict[str, str]) -> bool:
    for name, wanted in filters.items():
        have = device.inventory.get(name)
        values = have if isinstance(have, list) else [have]
        if wanted not in [str(v) for v in values]:
            return False
    return True


@router.get("/devices")
def list_devices(
    request: Request,
    _: CurrentUser,
    state: State,
    response: Response,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 20,
    group: str | None = None,
    has_group: bool | None = None,
    id: Annotated[
        list[str] | None,
        Query(max_length=500, description="only these devices (the web UI's page of them)"),
    ] = None,
) -> list[InventoryDevice]:
    filters = {k: v for k, v in request.query_params.items() if k not in _RESERVED}
    with state.db.read() as session:
        query = select(Device).where(Device.status != "decommissioned")
        if id:
            query = query.where(Device.id.in_(id))
        if group is not None:
            query = query.where(Device.group == group)
        if has_group is not None:
            query = query.where(Device.group.is_not(None) if has_group else Device.group.is_(None))
        rows = [d for d in session.scalars(query.order_by(Device.created)) if _matches(d, filters)]
    response.headers["X-Total-Count"] = str(len(rows))
    start = (page - 1) * per_page
    return [_out(d) for d in rows[start : start + per_page]]


@router.get("/devices/{device_id}")
def get_inventory(device_id: str, _: CurrentUser, state: State) -> InventoryDevice:
    with state.db.read() as session:
        return _out(get_device(session, device_id))


class GroupBody(BaseModel):
    group: str = Field(pattern=_GROUP.pattern)


class GroupOut(BaseModel):
    group: str | None


@router.get("/devices/{device_id}/group")
def get_group(device_id: str, _: CurrentUser, state: State) -> GroupOut:
    with state.db.read() as session:
        return GroupOut(group=get_device(session, device_id).group)


@router.put("/devices/{device_id}/group", status_code=204)
def set_group(device_id: str, body: GroupBody, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        device = get_device(session, device_id)
        state.audit.group(session, user, device_id, device.group, body.group)
        device.group = body.group
    return Response(status_code=204)


@router.delete("/devices/{device_id}/group/{name}", status_code=204)
def clear_group(device_id: str, name: str, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        device = get_device(session, device_id)
        if device.group != name:
            raise NotFound(f"device {device_id} is not in group {name}")
        state.audit.group(session, user, device_id, device.group, None)
        device.group = None
    return Response(status_code=204)


@router.get("/groups")
def list_groups(_: CurrentUser, state: State) -> list[str]:
    with state.db.read() as session:
        return sorted(g for g in session.scalars(select(Device.group).distinct()) if g is not None)


@router.get("/groups/{name}/devices")
def group_devices(name: str, _: CurrentUser, state: State) -> list[str]:
    with state.db.read() as session:
        return list(session.scalars(select(Device.id).where(Device.group == name)))
