"""Deployments: create (devices, group, all), list, show, statistics, abort, device logs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from pyupdate_server.api.deps import CurrentUser, State
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.db.models import Deployment, DeviceDeployment
from pyupdate_server.errors import NotFound
from pyupdate_server.services import rollout

router = APIRouter(prefix="/api/management/v1/deployments", tags=["deployments"])

Name = Annotated[str, Field(min_length=1, max_length=256)]


class NewDeployment(BaseModel):
    name: Name
    artifact_name: Name
    devices: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None
    all_devices: bool = False
    force_installation: bool = False
    max_devices: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    retries: Annotated[int, Field(ge=0, le=100)] = 0


class NewGroupDeployment(BaseModel):
    name: Name
    artifact_name: Name
    force_installation: bool = False
    max_devices: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    retries: Annotated[int, Field(ge=0, le=100)] = 0


class DeploymentOut(BaseModel):
    id: str
    name: str
    artifact_name: str
    status: str
    aborted: bool
    created: Timestamp
    finished: Timestamp | None
    device_count: int
    max_devices: int | None
    retries: int
    force_installation: bool
    target: str
    statistics: dict[str, int]


def _out(session, dep: Deployment) -> DeploymentOut:  # type: ignore[no-untyped-def]
    return DeploymentOut(
        id=dep.id,
        name=dep.name,
        artifact_name=dep.artifact_name,
        status=dep.status,
        aborted=dep.aborted,
        created=dep.created,
        finished=dep.finished,
        device_count=dep.device_count,
        max_devices=dep.max_devices,
        retries=dep.retries,
        force_installation=dep.force_installation,
        target=dep.target,
        statistics=rollout.statistics(session, dep.id),
    )


def _created(dep_id: str) -> Response:
    return Response(status_code=201, headers={"Location": f"{router.prefix}/deployments/{dep_id}"})


@router.post("/deployments", status_code=201, response_class=Response)
def create(body: NewDeployment, _: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        dep = rollout.create_deployment(
            session,
            name=body.name,
            artifact_name=body.artifact_name,
            devices=body.devices,
            all_devices=body.all_devices,
            force_installation=body.force_installation,
            max_devices=body.max_devices,
            retries=body.retries,
        )
        dep_id = dep.id
    return _created(dep_id)


@router.post("/deployments/group/{group}", status_code=201, response_class=Response)
def create_for_group(
    group: str, body: NewGroupDeployment, _: CurrentUser, state: State
) -> Response:
    with state.db.write() as session:
        dep = rollout.create_deployment(
            session,
            name=body.name,
            artifact_name=body.artifact_name,
            group=group,
            force_installation=body.force_installation,
            max_devices=body.max_devices,
            retries=body.retries,
        )
        dep_id = dep.id
    return _created(dep_id)


@router.get("/deployments")
def list_deployments(
    _: CurrentUser,
    state: State,
    response: Response,
    status: Literal["pending", "inprogress", "finished"] | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[DeploymentOut]:
    with state.db.read() as session:
        query = select(Deployment)
        count = select(func.count()).select_from(Deployment)
        if status is not None:
            query = query.where(Deployment.status == status)
            count = count.where(Deployment.status == status)
        rows = session.scalars(
            query.order_by(Deployment.created.desc()).offset((page - 1) * per_page).limit(per_page)
        )
        out = [_out(session, d) for d in rows]
        response.headers["X-Total-Count"] = str(session.scalar(count))
        return out


def _get(session, deployment_id: str) -> Deployment:  # type: ignore[no-untyped-def]
    dep = session.get(Deployment, deployment_id)
    if dep is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return dep  # type: ignore[no-any-return]


@router.get("/deployments/{deployment_id}")
def show(deployment_id: str, _: CurrentUser, state: State) -> DeploymentOut:
    with state.db.read() as session:
        return _out(session, _get(session, deployment_id))


@router.get("/deployments/{deployment_id}/statistics")
def statistics(deployment_id: str, _: CurrentUser, state: State) -> dict[str, int]:
    with state.db.read() as session:
        _get(session, deployment_id)
        return rollout.statistics(session, deployment_id)


class DeviceStatusOut(BaseModel):
    id: str
    status: str
    substate: str
    attempts: int
    created: Timestamp
    finished: Timestamp | None
    log: bool


def _devices(state: State, deployment_id: str) -> list[DeviceStatusOut]:
    with state.db.read() as session:
        _get(session, deployment_id)
        rows = session.scalars(
            select(DeviceDeployment)
            .where(DeviceDeployment.deployment_id == deployment_id)
            .order_by(DeviceDeployment.id)
        )
        return [
            DeviceStatusOut(
                id=r.device_id,
                status=r.status,
                substate=r.substate,
                attempts=r.attempts,
                created=r.created,
                finished=r.finished,
                log=bool(r.log),
            )
            for r in rows
        ]


@router.get("/deployments/{deployment_id}/devices")
def devices(deployment_id: str, _: CurrentUser, state: State) -> list[DeviceStatusOut]:
    return _devices(state, deployment_id)


@router.get("/deployments/{deployment_id}/devices/list")
def devices_list(
    deployment_id: str,
    _: CurrentUser,
    state: State,
    response: Response,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[DeviceStatusOut]:
    rows = _devices(state, deployment_id)
    response.headers["X-Total-Count"] = str(len(rows))
    return rows[(page - 1) * per_page : page * per_page]


class Abort(BaseModel):
    status: Literal["aborted"]


@router.put("/deployments/{deployment_id}/status", status_code=204)
def abort(deployment_id: str, body: Abort, _: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        rollout.abort(session, deployment_id)
    return Response(status_code=204)


@router.get(
    "/deployments/{deployment_id}/devices/{device_id}/log",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def device_log(deployment_id: str, device_id: str, _: CurrentUser, state: State) -> Response:
    with state.db.read() as session:
        row = session.scalar(
            select(DeviceDeployment).where(
                DeviceDeployment.deployment_id == deployment_id,
                DeviceDeployment.device_id == device_id,
            )
        )
        if row is None or not row.log:
            raise NotFound(f"no log for device {device_id} in deployment {deployment_id}")
        return PlainTextResponse(
            "".join(
                f"{m.get('timestamp', '')} {m.get('level', '')} {m.get('message', '')}\n"
                for m in row.log
            )
        )
