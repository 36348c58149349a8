"""Deployments: create (devices, group, all, a saved filter; phases, thresholds, start and
end times, install windows), list, show, statistics, pause, resume, abort, device logs."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyupdate_server.api.deps import CurrentUser, State
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.db.models import Deployment, DeviceDeployment, utcnow
from pyupdate_server.errors import NotFound
from pyupdate_server.services import (
    audit,
    control,
    creation,
    delta_jobs,
    deltas,
    phases,
    rollout,
    schedule,
)

router = APIRouter(prefix="/api/management/v1/deployments", tags=["deployments"])
log = logging.getLogger(__name__)

Name = Annotated[str, Field(min_length=1, max_length=256)]


Count = Annotated[int, Field(ge=1, le=2**31 - 1)]
Percent = Annotated[int, Field(ge=1, le=100)]


class Strict(BaseModel):
    # a field we do not implement is refused (422), never accepted and ignored
    model_config = ConfigDict(extra="forbid")


class NewPhase(Strict):
    """Mender Enterprise's phase (batch_size, start_ts), plus batch_count and
    start_when_healthy (docs/deployments.md, "Phases")."""

    batch_size: Percent | None = Field(default=None, description="percent of the devices")
    batch_count: Count | None = Field(default=None, description="number of devices")
    start_ts: AwareDatetime | None = None
    start_when_healthy: bool = False


class NewThreshold(Strict):
    count: Count | None = None
    percent: Percent | None = None


class Rollout(Strict):
    force_installation: bool = False
    max_devices: Count | None = None
    retries: Annotated[int, Field(ge=0, le=100)] = 0
    phases: list[NewPhase] | None = Field(default=None, max_length=phases.MAX_PHASES)
    failure_threshold: NewThreshold | None = None
    failure_action: Literal["pause", "abort"] | None = None
    success_threshold: NewThreshold | None = None
    start_ts: AwareDatetime | None = Field(
        default=None, description="ext: not handed out before (without phases)"
    )
    end_ts: AwareDatetime | None = Field(
        default=None, description="ext: no device not handed it yet is handed it after"
    )
    install_window: str | None = Field(
        default=None,
        max_length=11,
        description='ext: "HH:MM-HH:MM", device local time, daily; sent to the device',
    )
    allow_downgrade: bool = Field(
        default=False,
        description="ext: hand out the artifact to devices running a newer *.version",
    )


class NewDeployment(Rollout):
    name: Name
    artifact_name: Name
    devices: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None
    all_devices: bool = False


class NewGroupDeployment(Rollout):
    name: Name
    artifact_name: Name


def _naive_utc(ts: dt.datetime | None) -> dt.datetime | None:
    return ts.astimezone(dt.UTC).replace(tzinfo=None) if ts is not None else None


def _threshold(name: str, body: NewThreshold | None) -> phases.Threshold | None:
    return phases.threshold(name, body.count, body.percent) if body is not None else None


def _rollout_options(body: Rollout) -> dict[str, object]:
    specs = None
    if body.phases is not None:
        specs = [
            phases.PhaseSpec(
                batch_size=p.batch_size,
                batch_count=p.batch_count,
                start_ts=_naive_utc(p.start_ts),
                when_healthy=p.start_when_healthy,
            )
            for p in body.phases
        ]
    return {
        "force_installation": body.force_installation,
        "max_devices": body.max_devices,
        "retries": body.retries,
        "phase_specs": specs,
        "failure_threshold": _threshold("failure_threshold", body.failure_threshold),
        "failure_action": body.failure_action,
        "success_threshold": _threshold("success_threshold", body.success_threshold),
        "start_ts": _naive_utc(body.start_ts),
        "end_ts": _naive_utc(body.end_ts),
        "install_window": body.install_window,
        "allow_downgrade": body.allow_downgrade,
    }


class ThresholdOut(BaseModel):
    count: int | None = None
    percent: int | None = None


class PhaseOut(BaseModel):
    id: str
    number: int
    batch_size: int | None
    batch_count: int | None
    start_ts: Timestamp | None
    start_when_healthy: bool
    # Mender's meaning: devices of this phase that were handed the deployment
    device_count: int
    devices: int
    status: Literal["waiting", "inprogress", "finished"]
    started: Timestamp | None
    healthy: Timestamp | None
    successes: int
    failures: int


class EventOut(BaseModel):
    created: Timestamp
    kind: str
    phase: int | None
    by: str
    message: str
    data: dict[str, int | str]


class FilterOut(BaseModel):
    """Mender's `filter` of a dynamic deployment: the terms it was made with."""

    id: str
    name: str
    terms: list[dict[str, object]]


class DeliveryOut(BaseModel):
    """ext: what the devices handed it were sent (docs/deployments.md, "Delta updates")."""

    full: int = Field(description="devices sent the full artifact")
    delta: int = Field(description="devices sent a delta")
    fallback: int = Field(description="devices sent a delta that then fetched the full artifact")
    bytes_sent: int = Field(description="bytes of what was sent, over those devices")
    full_bytes: int = Field(description="bytes the full artifacts would have been")
    bytes_saved: int = Field(description="full_bytes - bytes_sent")


class DeltaJobOut(BaseModel):
    """ext: a delta the server makes for this deployment's artifact."""

    old_checksum: str
    old_artifact_id: str | None
    new_artifact_id: str
    status: Literal["queued", "running", "done", "not_smaller", "failed", "skipped"]
    error: str
    delta_artifact_id: str | None
    delta_size: int | None
    created: Timestamp
    finished: Timestamp | None


class DeploymentOut(BaseModel):
    id: str
    name: str
    artifact_name: str
    status: str
    aborted: bool
    paused: bool
    created: Timestamp
    finished: Timestamp | None
    device_count: int
    max_devices: int | None
    retries: int
    force_installation: bool
    target: str
    statistics: dict[str, int]
    phases: list[PhaseOut] | None = None
    failure_threshold: ThresholdOut | None = None
    failure_action: str | None = None
    success_threshold: ThresholdOut | None = None
    filter: FilterOut | None = None
    start_ts: Timestamp | None = None
    end_ts: Timestamp | None = None
    install_window: str | None = None
    allow_downgrade: bool = False


class DeploymentDetail(DeploymentOut):
    events: list[EventOut]
    # ext, on this route only: a list would count every deployment's rows once more
    delivery: DeliveryOut
    delta_jobs: list[DeltaJobOut] = Field(default_factory=list)


def _status(dep: Deployment) -> str:
    if dep.status == "finished":
        return "finished"
    if dep.paused:
        return "paused"
    if dep.status == "pending" and dep.phase_count and not dep.phases_started:
        return "scheduled"  # Mender Enterprise's name: the first phase has a later start
    if dep.status == "pending" and schedule.not_started(dep, utcnow()):
        return "scheduled"
    return dep.status


def _threshold_out(value: int | None, unit: str | None) -> ThresholdOut | None:
    if value is None or unit is None:
        return None
    return ThresholdOut(**{unit: value})


def _phases_out(session: Session, dep: Deployment) -> list[PhaseOut]:
    per_phase = phases.counts(session, dep.id)
    out = []
    for p in phases.phases_of(session, dep.id):
        c = per_phase.get(p.number, phases.Counts())
        status: Literal["waiting", "inprogress", "finished"] = "waiting"
        if p.started is not None:
            status = "finished" if c.final == c.size else "inprogress"
        out.append(
            PhaseOut(
                id=p.id,
                number=p.number,
                batch_size=p.batch_size,
                batch_count=p.batch_count,
                start_ts=p.start_ts,
                start_when_healthy=p.when_healthy,
                device_count=c.handed,
                devices=p.size,
                status=status,
                started=p.started,
                healthy=p.healthy,
                successes=c.successes,
                failures=c.failures,
            )
        )
    return out


def _out(session: Session, dep: Deployment) -> DeploymentOut:
    gated = phases.gated(dep)
    stats = rollout.statistics(session, dep.id)
    return DeploymentOut(
        id=dep.id,
        name=dep.name,
        artifact_name=dep.artifact_name,
        status=_status(dep),
        aborted=dep.aborted,
        paused=dep.paused,
        created=dep.created,
        finished=dep.finished,
        # a dynamic group's: the devices that joined it so far
        device_count=sum(stats.values()) if dep.dynamic else dep.device_count,
        max_devices=dep.max_devices,
        retries=dep.retries,
        force_installation=dep.force_installation,
        target=dep.target,
        statistics=stats,
        phases=_phases_out(session, dep) if gated else None,
        failure_threshold=_threshold_out(dep.failure_threshold, dep.failure_unit),
        failure_action=dep.failure_action if dep.failure_threshold is not None else None,
        success_threshold=_threshold_out(dep.success_threshold, dep.success_unit),
        filter=FilterOut(id=dep.filter_id, name=dep.filter_name or "", terms=dep.filter_terms)
        if dep.dynamic and dep.filter_id and dep.filter_terms is not None
        else None,
        start_ts=dep.start_ts,
        end_ts=dep.end_ts,
        install_window=dep.install_window,
        allow_downgrade=dep.allow_downgrade,
    )


def _delivery(session: Session, deployment_id: str) -> DeliveryOut:
    t = deltas.totals(session, deployment_id)
    return DeliveryOut(
        full=t.full,
        delta=t.delta,
        fallback=t.fallback,
        bytes_sent=t.bytes_sent,
        full_bytes=t.full_bytes,
        bytes_saved=t.bytes_saved,
    )


def _delta_jobs(session: Session, dep: Deployment) -> list[DeltaJobOut]:
    return [
        DeltaJobOut(
            old_checksum=j.old_checksum,
            old_artifact_id=j.old_artifact_id,
            new_artifact_id=j.new_artifact_id,
            status=j.status,  # type: ignore[arg-type]
            error=j.error,
            delta_artifact_id=j.delta_artifact_id,
            delta_size=j.delta_size,
            created=j.created,
            finished=j.finished,
        )
        for j in delta_jobs.jobs_for(session, dep.artifact_name)
    ]


def _detail(session: Session, dep: Deployment) -> DeploymentDetail:
    events = [
        EventOut(
            created=e.created,
            kind=e.kind,
            phase=e.phase,
            by=e.by,
            message=e.message,
            data=e.data,
        )
        for e in phases.events(session, dep.id)
    ]
    return DeploymentDetail(
        **_out(session, dep).model_dump(),
        events=events,
        delivery=_delivery(session, dep.id),
        delta_jobs=_delta_jobs(session, dep),
    )


def _advance_due(state: State, deployment_ids: list[str]) -> None:
    """Phases whose start time has passed start on this read, and deployments past their
    end time close what was not handed out (there is no background task): each in its
    own write transaction, decided once (services/phases.py, services/schedule.py)."""
    with state.db.read() as session:
        due = [
            d
            for d in deployment_ids
            if (dep := session.get(Deployment, d)) is not None and phases.due(session, dep)
        ]
        ended = [
            d
            for d in deployment_ids
            if (dep := session.get(Deployment, d)) is not None and rollout.expire_due(session, dep)
        ]
    for deployment_id in due:
        with state.db.write() as session:
            rollout.advance(session, deployment_id)
    for deployment_id in ended:
        with state.db.write() as session:
            rollout.expire(session, deployment_id)


def _plan_deltas(state: State, dep_id: str, artifact_name: str) -> None:
    """After the response: queue the deltas for the deployment's most common images. In
    its own transaction, so a large fleet's GROUP BY never lengthens the creation; lost
    if the process stops first, then the first hand-outs queue them (delta_jobs.want)."""
    settings = state.settings
    if not settings.delta_generation:
        return
    try:
        with state.db.write() as session:
            delta_jobs.plan(session, dep_id, artifact_name, settings.delta_bases)
    except Exception as exc:  # never the creation's failure: the hand-outs ask again
        log.warning("delta planning failed: %s", str(exc).splitlines()[0][:300])


def _created(dep_id: str) -> Response:
    return Response(status_code=201, headers={"Location": f"{router.prefix}/deployments/{dep_id}"})


@router.post("/deployments", status_code=201, response_class=Response)
def create(
    body: NewDeployment, user: CurrentUser, state: State, background: BackgroundTasks
) -> Response:
    options = _rollout_options(body)
    with state.db.write() as session:
        dep = creation.create_deployment(
            session,
            name=body.name,
            artifact_name=body.artifact_name,
            devices=body.devices,
            all_devices=body.all_devices,
            **options,  # type: ignore[arg-type]
        )
        dep_id = dep.id
        state.audit.deployment(session, user, "create", dep_id)
    background.add_task(_plan_deltas, state, dep_id, body.artifact_name)
    return _created(dep_id)


@router.post("/deployments/group/{group}", status_code=201, response_class=Response)
def create_for_group(
    group: str,
    body: NewGroupDeployment,
    user: CurrentUser,
    state: State,
    background: BackgroundTasks,
) -> Response:
    options = _rollout_options(body)
    with state.db.write() as session:
        dep = creation.create_deployment(
            session,
            name=body.name,
            artifact_name=body.artifact_name,
            group=group,
            **options,  # type: ignore[arg-type]
        )
        dep_id = dep.id
        state.audit.deployment(session, user, "create", dep_id)
    background.add_task(_plan_deltas, state, dep_id, body.artifact_name)
    return _created(dep_id)


@router.get("/deployments")
def list_deployments(
    _: CurrentUser,
    state: State,
    response: Response,
    status: Literal["pending", "inprogress", "finished", "paused"] | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[DeploymentOut]:
    query = select(Deployment)
    count = select(func.count()).select_from(Deployment)
    if status == "paused":
        query = query.where(Deployment.paused.is_(True), Deployment.status != "finished")
        count = count.where(Deployment.paused.is_(True), Deployment.status != "finished")
    elif status is not None:
        query = query.where(Deployment.status == status)
        count = count.where(Deployment.status == status)
    query = query.order_by(Deployment.created.desc()).offset((page - 1) * per_page).limit(per_page)
    with state.db.read() as session:
        ids = list(session.scalars(query.with_only_columns(Deployment.id)))
    _advance_due(state, ids)
    with state.db.read() as session:
        out = [_out(session, d) for d in session.scalars(query)]
        response.headers["X-Total-Count"] = str(session.scalar(count))
        return out


def _get(session: Session, deployment_id: str) -> Deployment:
    dep = session.get(Deployment, deployment_id)
    if dep is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return dep  # type: ignore[no-any-return]


@router.get("/deployments/{deployment_id}")
def show(deployment_id: str, _: CurrentUser, state: State) -> DeploymentDetail:
    _advance_due(state, [deployment_id])
    with state.db.read() as session:
        return _detail(session, _get(session, deployment_id))


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
    delivery: Literal["full", "delta", "fallback"] | None = Field(
        default=None, description="ext: what it was sent; null until handed out"
    )
    bytes_sent: int | None = Field(default=None, description="ext: bytes of what it was sent")
    full_size: int | None = Field(default=None, description="ext: bytes of the full artifact")


def _devices(
    state: State, deployment_id: str, page: tuple[int, int] | None = None
) -> tuple[list[DeviceStatusOut], int]:
    """The deployment's devices in hand-out order, a page of them (offset, limit) if given,
    cut by the database; and how many there are."""
    with state.db.read() as session:
        _get(session, deployment_id)
        query = (
            select(DeviceDeployment)
            .where(DeviceDeployment.deployment_id == deployment_id)
            .order_by(DeviceDeployment.id)
        )
        total = None
        if page is not None:
            total = session.scalar(
                select(func.count()).where(DeviceDeployment.deployment_id == deployment_id)
            )
            query = query.offset(page[0]).limit(page[1])
        rows = [
            DeviceStatusOut(
                id=r.device_id,
                status=r.status,
                substate=r.substate,
                attempts=r.attempts,
                created=r.created,
                finished=r.finished,
                log=bool(r.log),
                delivery=r.delivery,  # type: ignore[arg-type]
                bytes_sent=r.bytes_sent,
                full_size=r.full_size,
            )
            for r in session.scalars(query)
        ]
        return rows, len(rows) if total is None else int(total)


@router.get("/deployments/{deployment_id}/devices")
def devices(deployment_id: str, _: CurrentUser, state: State) -> list[DeviceStatusOut]:
    # Mender's shape: every device of the deployment, unpaged (the list route pages)
    return _devices(state, deployment_id)[0]


@router.get("/deployments/{deployment_id}/devices/list")
def devices_list(
    deployment_id: str,
    _: CurrentUser,
    state: State,
    response: Response,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[DeviceStatusOut]:
    rows, total = _devices(state, deployment_id, ((page - 1) * per_page, per_page))
    response.headers["X-Total-Count"] = str(total)
    return rows


class NewStatus(Strict):
    # Mender: "aborted"; ours: "paused", and "inprogress" to resume a paused deployment
    status: Literal["aborted", "paused", "inprogress"]


_SET_STATUS = {"aborted": control.abort, "paused": control.pause, "inprogress": control.resume}


@router.put(
    "/deployments/{deployment_id}/status",
    status_code=204,
    responses={422: {"description": "finished, already paused, or not paused"}},
)
def set_status(deployment_id: str, body: NewStatus, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        before = audit.deployment_state(session, deployment_id)
        _SET_STATUS[body.status](session, deployment_id, user.email)
        state.audit.deployment(session, user, body.status, deployment_id, before)
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
