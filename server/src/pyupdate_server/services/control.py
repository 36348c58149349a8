"""What a person does to a running deployment: abort, pause, resume (docs/deployments.md §8).

Each holds the deployment with Mode.ABORT, so it waits for every hand-out and
status report of it in flight, and they wait for it; the decision is recorded
in the deployment's event log (phases.record) in the same transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from pyupdate_server.db.models import Deployment
from pyupdate_server.errors import NotFound, Unprocessable
from pyupdate_server.services import locks, phases
from pyupdate_server.services.locks import Mode
from pyupdate_server.services.rollout import abort_rows


def _held_by_person(session: Session, deployment_id: str) -> Deployment:
    # FOR UPDATE: waits for every hand-out and status report of this deployment in
    # flight, and they wait for this; what is read below is the committed state
    dep = locks.deployment(session, deployment_id, Mode.ABORT)
    if dep is None:
        raise NotFound(f"deployment {deployment_id} not found")
    if dep.status == "finished":
        raise Unprocessable(f"deployment {deployment_id} is already finished")
    return dep


def abort(session: Session, deployment_id: str, by: str = "") -> None:
    dep = _held_by_person(session, deployment_id)
    phases.record(session, dep, "aborted", f"aborted by {by or 'a person'}", by=by)
    abort_rows(session, dep)


def pause(session: Session, deployment_id: str, by: str = "") -> None:
    dep = _held_by_person(session, deployment_id)
    if dep.aborted:
        raise Unprocessable(f"deployment {deployment_id} was aborted")
    if dep.paused:
        raise Unprocessable(f"deployment {deployment_id} is already paused")
    dep.paused = True
    phases.record(session, dep, "paused", f"paused by {by or 'a person'}", by=by)


def resume(session: Session, deployment_id: str, by: str = "") -> None:
    """Hand out again; the failures so far count as seen (the threshold counts anew)."""
    dep = _held_by_person(session, deployment_id)
    if not dep.paused:
        raise Unprocessable(f"deployment {deployment_id} is not paused")
    dep.paused = False
    phases.record(session, dep, "resumed", f"resumed by {by or 'a person'}", by=by)
    if phases.gated(dep):
        phases.accept_failures(session, dep)
        if phases.advance(session, dep):
            abort_rows(session, dep)
