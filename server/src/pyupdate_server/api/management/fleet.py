"""Fleet reads for the web UI's overview and device page, bounded on the server:
devices counted by status and by one inventory attribute (two GROUP BY queries, never
the list of devices), and one device's deployment history, a page at a time."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from pyupdate_server.api.deps import CurrentUser, State
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.db.models import Deployment, Device, DeviceDeployment
from pyupdate_server.errors import BadRequest
from pyupdate_server.services.admission import get_device

router = APIRouter(tags=["fleet"])

STATUSES = ("accepted", "pending", "preauthorized", "rejected", "noauth", "decommissioned")
MAX_VALUES = 50
# the names an inventory filter accepts (deployments.md §9.1): no quote, backslash or
# control character, so the name can sit in a JSON path on either engine
_ATTRIBUTE = re.compile(r'^[^"\\\x00-\x1f\x7f]{1,1024}$')


class ValueCount(BaseModel):
    value: str
    count: int


class FleetStatistics(BaseModel):
    devices: int  # every device, decommissioned ones included
    by_status: dict[str, int]
    attribute: str
    values: list[ValueCount]  # among accepted devices, most common first
    other: int  # accepted devices with a value beyond the first `limit`
    missing: int  # accepted devices that do not report the attribute


@router.get(
    "/api/management/v1/inventory/statistics",
    description="Devices by status, and accepted devices by the value of one inventory "
    f"attribute (the {MAX_VALUES} most common at most): counted by the database.",
)
def fleet_statistics(
    _: CurrentUser,
    state: State,
    attribute: Annotated[str, Query(max_length=1024)] = "artifact_name",
    limit: Annotated[int, Query(ge=1, le=MAX_VALUES)] = 10,
) -> FleetStatistics:
    if not _ATTRIBUTE.match(attribute):
        raise BadRequest('attribute: a name of 1 to 1024 characters without ", \\ or controls')
    with state.db.read() as session:
        by_status = dict.fromkeys(STATUSES, 0)
        rows = session.execute(select(Device.status, func.count()).group_by(Device.status))
        for status, count in rows:
            by_status[status] = count
        # a subquery, so the JSON path is bound once (PostgreSQL groups by the same bind)
        value = Device.inventory[attribute].as_string().label("value")
        accepted = select(value).where(Device.status == "accepted").subquery()
        counted = session.execute(
            select(accepted.c.value, func.count().label("n"))
            .group_by(accepted.c.value)
            .order_by(func.count().desc(), accepted.c.value)
        )
        values, other, missing = [], 0, 0
        for found, count in counted:
            if found is None:
                missing = count
            elif len(values) < limit:
                values.append(ValueCount(value=str(found), count=count))
            else:
                other += count
    return FleetStatistics(
        devices=sum(by_status.values()),
        by_status=by_status,
        attribute=attribute,
        values=values,
        other=other,
        missing=missing,
    )


class HistoryDeployment(BaseModel):
    id: str
    name: str
    artifact_name: str
    created: Timestamp
    status: str


class HistoryDevice(BaseModel):
    id: str
    status: str
    substate: str
    attempts: int
    created: Timestamp
    finished: Timestamp | None
    log: bool


class HistoryEntry(BaseModel):
    """Mender's device deployment: the deployment and the device's part in it."""

    id: str
    deployment: HistoryDeployment
    device: HistoryDevice


@router.get(
    "/api/management/v1/deployments/deployments/devices/{device_id}",
    description="The deployments a device took part in, newest first (Mender's route).",
)
def device_history(
    device_id: str,
    _: CurrentUser,
    state: State,
    response: Response,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[HistoryEntry]:
    with state.db.read() as session:
        get_device(session, device_id)  # 404 for a device we do not know
        mine = DeviceDeployment.device_id == device_id
        total = session.scalar(select(func.count()).select_from(DeviceDeployment).where(mine))
        rows = session.execute(
            select(DeviceDeployment, Deployment)
            .join(Deployment, Deployment.id == DeviceDeployment.deployment_id)
            .where(mine)
            .order_by(DeviceDeployment.created.desc(), DeviceDeployment.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        out = [
            HistoryEntry(
                id=str(row.id),
                deployment=HistoryDeployment(
                    id=dep.id,
                    name=dep.name,
                    artifact_name=dep.artifact_name,
                    created=dep.created,
                    status="paused" if dep.paused and dep.status != "finished" else dep.status,
                ),
                device=HistoryDevice(
                    id=device_id,
                    status=row.status,
                    substate=row.substate,
                    attempts=row.attempts,
                    created=row.created,
                    finished=row.finished,
                    log=bool(row.log),
                ),
            )
            for row, dep in rows
        ]
    response.headers["X-Total-Count"] = str(total or 0)
    return out
