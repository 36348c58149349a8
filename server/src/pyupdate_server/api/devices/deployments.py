"""Device deployments: next (GET/POST v1, POST v2), status and log (docs/device-api.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pyupdate_server import limits
from pyupdate_server.api.deps import CurrentDevice, State
from pyupdate_server.api.devices.full_source import full_source_link
from pyupdate_server.errors import BadRequest, TooLarge
from pyupdate_server.services import dynamic, rollout, schedule
from pyupdate_server.services.links import download_link

router = APIRouter(prefix="/api/devices", tags=["device deployments"])


class Source(BaseModel):
    uri: str
    expire: str


class ArtifactRef(BaseModel):
    id: str
    artifact_name: str
    source: Source
    device_types_compatible: list[str]
    pyupdate_full_source: Source | None = Field(
        default=None,
        description="ext, with a delta only: the full artifact, for a device whose active "
        'slot is not the delta\'s base (docs/deployments.md, "Delta updates")',
    )


class InstallWindow(BaseModel):
    """docs/device-api.md, "Install windows": device local time, daily."""

    start: str = Field(description="HH:MM, included")
    end: str = Field(description="HH:MM, excluded; before start: crosses midnight")


class DeploymentInstructions(BaseModel):
    id: str
    artifact: ArtifactRef
    install_window: InstallWindow | None = Field(
        default=None, description="absent: install at once"
    )


class ProvidesV2(BaseModel):
    device_provides: dict[str, str]
    update_control_map: bool | None = None


class StatusReport(BaseModel):
    status: str = Field(max_length=64)
    substate: str | None = Field(default=None, max_length=4096)


class LogMessage(BaseModel):
    level: str | None = None
    message: str | None = None
    timestamp: str | None = None
    model_config = {"extra": "allow"}


class DeploymentLog(BaseModel):
    messages: list[LogMessage] = Field(
        description=f"at most {limits.MAX_LOG_MESSAGES} messages and "
        f"{limits.MAX_LOG_BODY} bytes in all (else 413)"
    )


_NEXT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": DeploymentInstructions},
    204: {"description": "nothing to do"},
}


async def _next(
    state: State, device_id: str, provides: dict[str, object], request: Request
) -> Response:
    device_type = provides.get("device_type")
    if not isinstance(device_type, str) or not device_type:
        raise BadRequest("device_type is required")
    if not isinstance(provides.get("artifact_name"), str):
        raise BadRequest("artifact_name is required")
    # the fleet's steady state: nothing targets the device; answer from a read, on the loop
    hint = await rollout.poll_hint(state.db, device_id)
    if not hint.open_row and not (
        # an open dynamic group's membership: the device's own row, in a worker thread
        hint.dynamic_open and await run_in_threadpool(dynamic.may_join, state.db, device_id)
    ):
        return Response(status_code=204)
    base = str(request.base_url)
    return await run_in_threadpool(_decide, state, device_id, device_type, provides, base)


def _decide(
    state: State, device_id: str, device_type: str, provides: dict[str, object], base: str
) -> Response:
    with state.db.write() as session:
        assignment = rollout.next_for_device(session, device_id, device_type, provides)
    # the answer is built after the commit: links and JSON add nothing to the time the
    # transaction holds its locks (on SQLite the database's one write lock), and a
    # commit that failed is never announced to the device
    if assignment is None:
        return Response(status_code=204)
    dep, artifact = assignment.deployment, assignment.artifact
    window = schedule.window_of(dep)
    body = DeploymentInstructions(
        id=dep.id,
        artifact=ArtifactRef(
            id=artifact.id,
            artifact_name=artifact.name,
            source=_source(state, artifact.id, artifact.blob, base),
            device_types_compatible=list(artifact.device_types),
            pyupdate_full_source=_full_source(state, dep.id, device_id, assignment, base),
        ),
        install_window=InstallWindow(start=window.start, end=window.end) if window else None,
    )
    # without a window the answer is Mender's, byte for byte: no null member
    return JSONResponse(body.model_dump(exclude_none=True))


def _full_source(
    state: State, deployment_id: str, device_id: str, assignment: rollout.Assignment, base: str
) -> Source | None:
    if assignment.full is None:  # a full artifact: Mender's answer, nothing added
        return None
    link = full_source_link(state.full_links, deployment_id, device_id, assignment.full.id, base)
    return Source(uri=link.uri, expire=link.expire)


def _source(state: State, artifact_id: str, blob: str, base: str) -> Source:
    # Without a configured public URL, the link uses the address the device reached
    # us at: behind NAT, a port forward or QEMU's guestfwd it is the only one that works.
    # With an object store it is a presigned URL to the store (computed, no request).
    link = download_link(state.links, state.store, artifact_id, blob, base)
    return Source(uri=link.uri, expire=link.expire)


@router.get(
    "/v1/deployments/device/deployments/next", responses=_NEXT_RESPONSES, response_model=None
)
async def next_get(
    request: Request,
    device: CurrentDevice,
    state: State,
    artifact_name: Annotated[str, Field(min_length=1, max_length=4096)],
    device_type: Annotated[str, Field(min_length=1, max_length=4096)],
) -> Response:
    provides: dict[str, object] = dict(request.query_params)
    provides.update(artifact_name=artifact_name, device_type=device_type)
    return await _next(state, device.id, provides, request)


@router.post(
    "/v1/deployments/device/deployments/next", responses=_NEXT_RESPONSES, response_model=None
)
async def next_post_v1(
    request: Request,
    provides: dict[str, str | dict[str, str]],
    device: CurrentDevice,
    state: State,
) -> Response:
    # Mender 3.4 sends the flat provides map; the open-source server's shape nests
    # extra provides under artifact_provides: accept both
    flat: dict[str, object] = {k: v for k, v in provides.items() if isinstance(v, str)}
    nested = provides.get("artifact_provides")
    if isinstance(nested, dict):
        flat = {**nested, **flat}
    return await _next(state, device.id, flat, request)


@router.post(
    "/v2/deployments/device/deployments/next", responses=_NEXT_RESPONSES, response_model=None
)
async def next_post_v2(
    request: Request, body: ProvidesV2, device: CurrentDevice, state: State
) -> Response:
    return await _next(state, device.id, dict(body.device_provides), request)


@router.put(
    "/v1/deployments/device/deployments/{deployment_id}/status",
    status_code=204,
    responses={409: {"description": "deployment aborted"}},
)
def put_status(
    deployment_id: str, report: StatusReport, device: CurrentDevice, state: State
) -> Response:
    with state.db.write() as session:
        rollout.report_status(
            session, device.id, deployment_id, report.status, report.substate or ""
        )
    return Response(status_code=204)


@router.put("/v1/deployments/device/deployments/{deployment_id}/log", status_code=204)
def put_log(
    deployment_id: str, body: DeploymentLog, device: CurrentDevice, state: State
) -> Response:
    if len(body.messages) > limits.MAX_LOG_MESSAGES:
        raise TooLarge(f"deployment log over {limits.MAX_LOG_MESSAGES} messages")
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    if limits.json_depth(messages) > limits.MAX_JSON_DEPTH:
        raise BadRequest(f"deployment log nests deeper than {limits.MAX_JSON_DEPTH} levels")
    with state.db.write() as session:
        rollout.store_log(session, device.id, deployment_id, messages)
    return Response(status_code=204)
