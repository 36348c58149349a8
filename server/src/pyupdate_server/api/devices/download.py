"""Artifact download through a signed link: Content-Length, Range/206, streamed from disk;
with an object store, a redirect to a presigned URL (links handed out before a switch to
S3 keep working)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from pyupdate_server.api.deps import State
from pyupdate_server.api.file_response import ArtifactFileResponse
from pyupdate_server.db.models import Artifact
from pyupdate_server.errors import NotFound
from pyupdate_server.services.links import DOWNLOAD_PATH

router = APIRouter(tags=["device download"])


_DESCRIPTION = (
    "The link is the credential: anyone holding it may GET or HEAD this one artifact "
    "until x-men-expire (download_link_ttl, default 3600 s; docs/security.md)."
)


@router.get(
    DOWNLOAD_PATH + "/{artifact_id}",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/vnd.mender-artifact": {
                    "schema": {"type": "string", "format": "binary"}
                }
            }
        },
        206: {"description": "partial content"},
        307: {"description": "fetch it from the object store (a presigned URL)"},
        416: {"description": "range not satisfiable"},
        403: {"description": "bad or expired link"},
    },
    description=_DESCRIPTION,
)
def download(
    request: Request,
    artifact_id: str,
    state: State,
    expire: Annotated[str, Query(alias="x-men-expire")],
    signature: Annotated[str, Query(alias="x-men-signature")],
) -> Response:
    state.links.check(artifact_id, expire, signature)
    with state.db.read() as session:
        artifact = session.get(Artifact, artifact_id)
        if artifact is None:
            raise NotFound(f"artifact {artifact_id} not found")
        blob = artifact.blob
        filename = f"{artifact.name}.mender"
    url = state.store.download_url(blob, state.links.ttl)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    path = state.store.local_path(blob)
    if path is None or not path.exists():
        raise NotFound(f"artifact {artifact_id} has no stored file")
    return ArtifactFileResponse(
        path, request.headers, media_type="application/vnd.mender-artifact", filename=filename
    )


# HEAD: size and Range support without the body (docs/device-api.md, "Download")
router.add_api_route(
    DOWNLOAD_PATH + "/{artifact_id}",
    download,
    methods=["HEAD"],
    response_class=Response,
    operation_id="download_head",
    responses={200: {"description": "headers only"}, 403: {"description": "bad or expired link"}},
    description=_DESCRIPTION,
)
