"""Artifacts: upload (multipart, `artifact` part last), list, show, download link, delete."""

from __future__ import annotations

import contextlib
import logging
from functools import partial
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select

from pyupdate_server.api.deps import CurrentUser, State
from pyupdate_server.api.multipart import receive_upload
from pyupdate_server.api.streaming import StreamingArtifact
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.db.models import Artifact
from pyupdate_server.errors import NotFound
from pyupdate_server.services import artifacts as service
from pyupdate_server.services import deltas, links

router = APIRouter(prefix="/api/management/v1/deployments", tags=["artifacts"])
log = logging.getLogger(__name__)


class ArtifactInfo(BaseModel):
    format: str = "mender"
    version: int = 3


class TypeInfo(BaseModel):
    type: str | None


class Update(BaseModel):
    type_info: TypeInfo


class ArtifactOut(BaseModel):
    id: str
    name: str
    description: str
    device_types_compatible: list[str]
    info: ArtifactInfo
    signed: bool
    updates: list[Update]
    artifact_provides: dict[str, str]
    artifact_depends: dict[str, object]
    clears_artifact_provides: list[str] | None
    size: int
    sha256: str
    modified: Timestamp
    kind: Literal["full", "delta"] = Field(
        description='ext: delta = a pyupdate-delta payload (docs/deployments.md, "Delta updates")'
    )
    generated: bool = Field(description="ext: a delta the server made (its cache evicts it)")


def artifact_out(a: Artifact) -> ArtifactOut:
    return ArtifactOut(
        id=a.id,
        name=a.name,
        description=a.description,
        device_types_compatible=list(a.device_types),
        info=ArtifactInfo(),
        signed=a.signed,
        updates=[Update(type_info=TypeInfo(type=t)) for t in a.payload_types],
        artifact_provides=dict(a.provides),
        artifact_depends={"device_type": list(a.device_types), **a.depends},
        clears_artifact_provides=a.clears_provides,
        size=a.size,
        sha256=a.sha256,
        modified=a.created,
        kind="delta" if deltas.is_delta(a) else "full",
        generated=a.generated,
    )


_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["artifact"],
                    "properties": {
                        "description": {"type": "string"},
                        "size": {"type": "integer"},
                        "artifact": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/artifacts",
    status_code=201,
    response_class=Response,
    responses={
        201: {"description": "stored; Location names it"},
        400: {"description": "malformed upload"},
        409: {"description": "same name and depends exist"},
        413: {"description": "too large"},
        422: {"description": "artifact invalid"},
        503: {"description": "the database or the object store is unreachable; nothing kept"},
        507: {"description": "server storage is full"},
    },
    openapi_extra=_UPLOAD_DOC,
)
async def upload(request: Request, user: CurrentUser, state: State) -> Response:
    artifact_id, blob = service.new_blob()
    # an object store takes the artifact as it arrives, validated on the way
    # (api/streaming.py); local files are staged in tmp/, validated, then renamed in
    multipart = state.store.open_upload(blob)
    stream_to = None
    if multipart is not None:
        stream_to = partial(StreamingArtifact, multipart, state.validator.read_header)
    upload = await receive_upload(
        request, "artifact", state.tmp_dir, state.settings.max_artifact_size, stream_to
    )
    try:
        if upload.stream is not None:
            header = await run_in_threadpool(upload.stream.finish)  # the object is complete
            upload.stream = None
            in_store = True
        else:
            header = await run_in_threadpool(state.validator.read_header, upload.file_path)
            in_store = False

        def _store() -> None:
            try:
                if not in_store:
                    with state.db.read() as session:
                        service.check_new(session, header)  # 409 before the copy
                    # into the store first, outside any transaction: the copy takes as
                    # long as the artifact is large, and must not hold a write lock
                    state.store.put_file(blob, upload.file_path)  # type: ignore[arg-type]
                with state.db.write() as session:
                    service.store_artifact(
                        session,
                        artifact_id,
                        blob,
                        header,
                        upload.file_size,
                        upload.sha256,
                        upload.fields.get("description", ""),
                    )
                    state.audit.record(
                        session,
                        user,
                        "create",
                        "artifact",
                        artifact_id,
                        names={"name": header.artifact_name},
                        change=f"artifact {header.artifact_name} uploaded ({upload.file_size} bytes)",
                        after={"name": header.artifact_name, "sha256": upload.sha256},
                    )
            except BaseException:
                # the row did not commit (a duplicate, a full disk, the database gone):
                # no file in the store without its record
                with contextlib.suppress(Exception):
                    state.store.delete(blob)
                raise

        await run_in_threadpool(_store)
    finally:
        await run_in_threadpool(upload.discard)
    log.info("artifact stored", extra={"artifact": artifact_id, "size": upload.file_size})
    return Response(
        status_code=201, headers={"Location": f"{router.prefix}/artifacts/{artifact_id}"}
    )


def _list(state: State, name: str | None) -> list[ArtifactOut]:
    with state.db.read() as session:
        query = select(Artifact).order_by(Artifact.created.desc())
        if name:
            query = query.where(Artifact.name == name)
        return [artifact_out(a) for a in session.scalars(query)]


@router.get("/artifacts")
def list_artifacts(_: CurrentUser, state: State, name: str | None = None) -> list[ArtifactOut]:
    return _list(state, name)


@router.get("/artifacts/list")
def list_artifacts_v2(_: CurrentUser, state: State, name: str | None = None) -> list[ArtifactOut]:
    return _list(state, name)


@router.get("/artifacts/{artifact_id}")
def get_artifact(artifact_id: str, _: CurrentUser, state: State) -> ArtifactOut:
    with state.db.read() as session:
        artifact = session.get(Artifact, artifact_id)
        if artifact is None:
            raise NotFound(f"artifact {artifact_id} not found")
        return artifact_out(artifact)


@router.delete("/artifacts/{artifact_id}", status_code=204)
def delete_artifact(artifact_id: str, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        artifact = session.get(Artifact, artifact_id)
        name = artifact.name if artifact is not None else ""
        service.delete_artifact(session, state.store, artifact_id)
        state.audit.record(
            session,
            user,
            "delete",
            "artifact",
            artifact_id,
            names={"name": name},
            change=f"artifact {name} deleted",
        )
    return Response(status_code=204)


class DownloadLink(BaseModel):
    uri: str
    expire: str


@router.get("/artifacts/{artifact_id}/download")
def download_link(request: Request, artifact_id: str, _: CurrentUser, state: State) -> DownloadLink:
    with state.db.read() as session:
        artifact = session.get(Artifact, artifact_id)
        if artifact is None:
            raise NotFound(f"artifact {artifact_id} not found")
        blob = artifact.blob
    base = str(request.base_url)
    link = links.download_link(state.links, state.store, artifact_id, blob, base)
    return DownloadLink(uri=link.uri, expire=link.expire)
