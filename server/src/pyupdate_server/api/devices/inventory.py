"""PUT/PATCH /api/devices/v1/inventory/device/attributes: PUT replaces, PATCH upserts."""

from __future__ import annotations

from fastapi import APIRouter, Response
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


def _apply(state: State, device_id: str, attrs: list[Attribute], replace: bool) -> None:
    values = {a.name: a.value for a in attrs}
    for name, value in values.items():
        if _value_size(value) > limits.MAX_ATTR_VALUE:
            raise TooLarge(
                f"inventory attribute {name[:64]!r}: value over {limits.MAX_ATTR_VALUE} "
                f"characters or {limits.MAX_ATTR_ITEMS} items"
            )
    if len(values) > limits.MAX_INVENTORY_ATTRS:
        raise TooLarge(f"inventory over {limits.MAX_INVENTORY_ATTRS} attributes")
    with state.db.write() as session:
        device = locks.device(session, device_id)  # a merge reads, then writes
        if device is None:
            raise NotFound(f"device {device_id} not found")
        merged = {} if replace else dict(device.inventory)
        merged.update(values)
        if len(merged) > limits.MAX_INVENTORY_ATTRS:
            raise TooLarge(f"inventory over {limits.MAX_INVENTORY_ATTRS} attributes")
        if merged != device.inventory:
            webhooks.inventory(session, device_id, merged)
        device.inventory = merged
        device.updated = utcnow()


_LIMITS_DOC = (
    f"Limits: body {limits.MAX_INVENTORY_BODY} bytes, {limits.MAX_INVENTORY_ATTRS} attributes "
    f"per device (after a PATCH merges), values of {limits.MAX_ATTR_VALUE} characters; "
    "over any of them 413 and nothing is stored."
)


@router.put("/device/attributes", status_code=200, response_class=Response, description=_LIMITS_DOC)
def put_attributes(attrs: list[Attribute], device: CurrentDevice, state: State) -> Response:
    _apply(state, device.id, attrs, replace=True)
    return Response(status_code=200)


@router.patch(
    "/device/attributes", status_code=200, response_class=Response, description=_LIMITS_DOC
)
def patch_attributes(attrs: list[Attribute], device: CurrentDevice, state: State) -> Response:
    _apply(state, device.id, attrs, replace=False)
    return Response(status_code=200)
