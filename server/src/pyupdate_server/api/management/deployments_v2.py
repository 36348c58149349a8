"""Deployments v2 (Mender Enterprise's shape): a deployment to a dynamic group, given as
a saved filter's id (docs/deployments.md §9)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import Field

from pyupdate_server.api.deps import CurrentUser, State
from pyupdate_server.api.management.deployments import Name, Rollout, _rollout_options
from pyupdate_server.services import creation

router = APIRouter(prefix="/api/management/v2/deployments", tags=["deployments"])


class NewDynamicDeployment(Rollout):
    name: Name
    artifact_name: Name
    filter_id: str = Field(min_length=1, max_length=64, description="a saved filter's id")


@router.post("/deployments", status_code=201, response_class=Response)
def create_dynamic(body: NewDynamicDeployment, user: CurrentUser, state: State) -> Response:
    """Devices that match the filter get it at their deployment checks while it is
    open, those that join the group later too; it never finishes by itself unless
    capped (max_devices) or given an end time."""
    options = _rollout_options(body)
    with state.db.write() as session:
        dep = creation.create_deployment(
            session,
            name=body.name,
            artifact_name=body.artifact_name,
            filter_id=body.filter_id,
            **options,  # type: ignore[arg-type]
        )
        dep_id = dep.id
        state.audit.deployment(session, user, "create", dep_id)
    return Response(
        status_code=201,
        headers={"Location": f"/api/management/v1/deployments/deployments/{dep_id}"},
    )
