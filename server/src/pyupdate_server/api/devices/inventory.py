"""PUT/PATCH /api/devices/v1/inventory/device/attributes: PUT replaces, PATCH upserts."""

from __future__ import annotations

import json

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from pyupdate_server import limits
from pyupdate_server.api.deps import CurrentDevice, State
from pyupdate_server.db.models import utcnow
from pyupdate_server.errors import NotFound, TooLarge
from pyupdate_server.services import locks, webhooks

router = APIRouter(prefix="/api/devices/v1/inventory", tags=["device inventory"])

Scalar = str | int | float
AttrValue = Scalar | list[Scalar]


class Attribute(BaseModel):
    name: str = Field(min_length=1, max_length=limits.MAX_ATTR_NAME)
    value: AttrValue = Field(
        description=f"at most {limits.MAX_ATTR_VALUE} characters, or a list of at most "
        f"{limits.MAX_ATTR_ITEMS} items with that many characters together (else 413)"
    )
    description: str | None = Field(default=None, max_length=1024)


def _value_size(value: AttrValue) -> int:
    items = value if isinstance(value, list) else [value]
    if len(items) > limits.MAX_ATTR_ITEMS:
        return limits.MAX_ATTR_VALUE + 1
    return sum(len(str(v)) for v in items)


def _checked(attrs: list[Attribute]) -> dict[str, AttrValue]:
    values = {a.name: a.value for a in attrs}
    for name, value in values.items():
        if _value_size(value) > limits.MAX_ATTR_VALUE:
            raise TooLarge(
                f"inventory attribute {name[:64]!r}: value over {limits.MAX_ATTR_VALUE} "
                f"characters or {limits.MAX_ATTR_ITEMS} items"
            )
    if len(values) > limits.MAX_INVENTORY_ATTRS:
        raise TooLarge(f"inventory over {limits.MAX_INVENTORY_ATTRS} attributes")
    return values


_INVENTORY_SQL = "SELECT inventory FROM devices WHERE id = :d"


async def _unchanged(state: State, device_id: str, values: dict, replace: bool) -> bool:
    """Whether the report would leave the stored inventory as it is: one read on the
    event loop. A fleet's devices report the same attributes over and over (no uptime
    in Mender's or our inventory scripts): at 30-minute reports that write was most of
    an idle fleet's database load (docs/scaling.md). A report racing a change of the
    same device may be answered from the older row: reports of one device carry no
    order between them anyway."""
    row = await state.db.aquick(_INVENTORY_SQL, {"d": device_id})
    if row is None:
        return False  # gone: the write path says 404
    stored = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    if not isinstance(stored, dict):
        return False
    return (values if replace else {**stored, **values}) == stored


async def _report(state: State, device_id: str, attrs: list[Attribute], replace: bool) -> None:
    values = _checked(attrs)
    if not await _unchanged(state, device_id, values, replace):
        await run_in_threadpool(_apply, state, device_id, values, replace)


def _apply(state: State, device_id: str, values: dict, replace: bool) -> None:
    with state.db.write() as session:
        device = locks.device(session, device_id)  # a merge reads, then writes
        if device is None:
            raise NotFound(f"device {device_id} not found")
        merged = {} if replace else dict(device.inventory)
        merged.update(values)
        if len(merged) > limits.MAX_INVENTORY_ATTRS:
            raise TooLarge(f"inventory over {limits.MAX_INVENTORY_ATTRS} attributes")
        if merged == device.inventory:
            return  # updated_ts is the last change (the web UI's "Last change")
        webhooks.inventory(session, device_id, merged)
        device.inventory = merged
        device.updated = utcnow()


_LIMITS_DOC = (
    f"Limits: body {limits.MAX_INVENTORY_BODY} bytes, {limits.MAX_INVENTORY_ATTRS} attributes "
    f"per device (after a PATCH merges), values of {limits.MAX_ATTR_VALUE} characters; "
    "over any of them 413 and nothing is stored."
)


@router.put("/device/attributes", status_code=200, response_class=Response, description=_LIMITS_DOC)
async def put_attributes(attrs: list[Attribute], device: CurrentDevice, state: State) -> Response:
    await _report(state, device.id, attrs, replace=True)
    return Response(status_code=200)


@router.patch(
    "/device/attributes", status_code=200, response_class=Response, description=_LIMITS_DOC
)
async def patch_attributes(attrs: list[Attribute], device: CurrentDevice, state: State) -> Response:
    await _report(state, device.id, attrs, replace=False)
    return Response(status_code=200)
