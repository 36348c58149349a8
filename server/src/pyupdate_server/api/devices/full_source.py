"""A delta's fallback: `artifact.pyupdate_full_source` (docs/device-api.md, "Delta updates").

A device handed a delta whose base is not its active slot (a modified slot) fetches the
full artifact through this link: it records the device's delivery as `fallback` and
redirects to the full artifact's usual download link (ours, or a presigned URL of the
object store). The link is the credential, bound to the deployment, the device and the
full artifact, and it expires as download links do.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from pyupdate_server.api.deps import State
from pyupdate_server.db.models import Artifact, DeviceDeployment
from pyupdate_server.errors import NotFound
from pyupdate_server.services import deltas, locks
from pyupdate_server.services.links import FULL_SOURCE_PATH, Link, LinkSigner, download_link
from pyupdate_server.services.locks import Mode

router = APIRouter(tags=["device deployments"])
log = logging.getLogger(__name__)


def full_source_link(
    links: LinkSigner, deployment_id: str, device_id: str, artifact_id: str, base: str
) -> Link:
    """The link a delta hand-out carries as `pyupdate_full_source`."""
    return links.make(f"{deployment_id}/{device_id}/{artifact_id}", base=base)


_DESCRIPTION = (
    "The link is the credential: the device handed a delta follows it when the delta's base "
    "is not its active slot. Records the device's delivery as `fallback`, then redirects to "
    "the full artifact's download link (download_link_ttl; docs/deployments.md, "
    '"Delta updates").'
)


@router.get(
    FULL_SOURCE_PATH + "/{deployment_id}/{device_id}/{artifact_id}",
    response_class=Response,
    status_code=302,
    responses={
        302: {"description": "fetch the full artifact from the Location"},
        403: {"description": "bad or expired link"},
    },
    description=_DESCRIPTION,
)
def full_source(
    request: Request,
    deployment_id: str,
    device_id: str,
    artifact_id: str,
    state: State,
    expire: Annotated[str, Query(alias="x-men-expire")],
    signature: Annotated[str, Query(alias="x-men-signature")],
) -> Response:
    state.full_links.check(f"{deployment_id}/{device_id}/{artifact_id}", expire, signature)
    with state.db.write() as session:
        # the lock order of every device_deployments change: device, deployment, row
        locks.device(session, device_id)
        locks.deployment(session, deployment_id, Mode.SHARE)
        full = session.get(Artifact, artifact_id)
        if full is None:
            raise NotFound(f"artifact {artifact_id} not found")
        row = session.scalar(
            select(DeviceDeployment).where(
                DeviceDeployment.deployment_id == deployment_id,
                DeviceDeployment.device_id == device_id,
            )
        )
        if row is not None and row.delivery == "delta" and deltas.record_fallback(row, full):
            log.info(
                "delta fell back to the full artifact",
                extra={"deployment": deployment_id, "device": device_id, "artifact": artifact_id},
            )
        blob = full.blob
    link = download_link(state.links, state.store, artifact_id, blob, str(request.base_url))
    return RedirectResponse(link.uri, status_code=302)
