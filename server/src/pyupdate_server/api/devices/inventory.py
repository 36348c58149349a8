"""PUT/PATCH /api/devices/v1/inventory/device/attributes: PUT replaces, PATCH upserts."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from pyupdate_server.api.deps import CurrentDevice, State
from pyupdate_server.db.models import Device, utcnow

router = APIRouter(prefix="/api/devices/v1/inventory", tags=["device inventory"])

Scalar = str | int | float
AttrValue = Scalar | list[Scalar]


class Attribute(BaseModel):
    name: str = Field(min_length=1, max_length=1024)
    value: AttrValue
    description: str | None = None


def _apply(state: State, device_id: str, attrs: list[Attribute], replace: bool) -> None:
    values = {a.name: a.value for a in attrs}
    with state.db.write() as session:
        device = session.get(Device, device_id)
        assert device is not None  # current_device checked it
        merged = {} if replace else dict(device.inventory)
        merged.update(values)
        device.inventory = merged
        device.updated = utcnow()


@router.put("/device/attributes", status_code=200, response_class=Response)
def put_attributes(attrs: list[Attribute], device: CurrentDevice, state: State) -> Response:
    _apply(state, device.id, attrs, replace=True)
    return Response(status_code=200)


@router.patch("/device/attributes", status_code=200, response_class=Response)
def patch_attributes(attrs: list[Attribute], device: CurrentDevice, state: State) -> Response:
    _apply(state, device.id, attrs, replace=False)
    return Response(status_code=200)
