"""A new deployment: its targets, phases, thresholds, times and checks, in one transaction
(docs/deployments.md §1, §8-§11). Who gets it afterwards is rollout.py's.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence

from sqlalchemy import Select, literal, select
from sqlalchemy.orm import Session

from pyupdate_server.db.models import Artifact, Deployment, Device, DeviceDeployment, utcnow
from pyupdate_server.errors import BadRequest, Unprocessable
from pyupdate_server.services import downgrade, filters, phases, schedule, webhooks
from pyupdate_server.services.phases import PhaseSpec, Threshold

INSERT_CHUNK = 10_000  # device rows per INSERT of a new deployment


def create_deployment(
    session: Session,
    *,
    name: str,
    artifact_name: str,
    devices: Iterable[str] | None = None,
    group: str | None = None,
    all_devices: bool = False,
    force_installation: bool = False,
    max_devices: int | None = None,
    retries: int = 0,
    phase_specs: Sequence[PhaseSpec] | None = None,
    failure_threshold: Threshold | None = None,
    failure_action: str | None = None,
    success_threshold: Threshold | None = None,
    filter_id: str | None = None,
    start_ts: dt.datetime | None = None,
    end_ts: dt.datetime | None = None,
    install_window: str | None = None,
    allow_downgrade: bool = False,
) -> Deployment:
    if not name.strip():
        raise BadRequest("name must not be empty")
    if retries < 0:
        raise BadRequest("retries must be >= 0")
    if max_devices is not None and max_devices < 1:
        raise BadRequest("max_devices must be >= 1")
    if session.scalar(select(Artifact.id).where(Artifact.name == artifact_name).limit(1)) is None:
        raise Unprocessable(f"no artifact named {artifact_name!r}")
    if sum([devices is not None, group is not None, all_devices, filter_id is not None]) != 1:
        raise BadRequest("give exactly one of devices, group, all_devices, filter_id")
    if start_ts is not None and phase_specs is not None:
        raise BadRequest("start_ts: give the start time on the first phase instead")
    last_start = max((p.start_ts for p in phase_specs or [] if p.start_ts), default=None)
    schedule.check_times(start_ts, end_ts, utcnow(), last_start)
    window = str(schedule.parse_window(install_window)) if install_window is not None else None
    times = {
        "start_ts": start_ts,
        "end_ts": end_ts,
        "install_window": window,
        "allow_downgrade": allow_downgrade,
    }
    options = {
        "force_installation": force_installation,
        "max_devices": max_devices,
        "retries": retries,
    }
    if filter_id is not None:
        dynamic_options = (phase_specs, failure_threshold, success_threshold, failure_action)
        if any(o is not None for o in dynamic_options):
            raise BadRequest(
                "phases and thresholds are not for a dynamic group: its devices are not "
                "known in advance (give start_ts for a start time)"
            )
        return _create_dynamic(
            session,
            name=name,
            artifact_name=artifact_name,
            filter_id=filter_id,
            force_installation=force_installation,
            max_devices=max_devices,
            retries=retries,
            **times,  # type: ignore[arg-type]
        )
    if failure_action is not None and failure_action not in phases.FAILURE_ACTIONS:
        raise BadRequest(f"failure_action must be one of {', '.join(phases.FAILURE_ACTIONS)}")
    if failure_action is not None and failure_threshold is None:
        raise BadRequest("failure_action: give a failure_threshold for it to act on")
    if phase_specs is None and (failure_threshold is not None or success_threshold is not None):
        phase_specs = [PhaseSpec()]  # thresholds alone: one phase of every device
    if devices is not None:
        ids = list(dict.fromkeys(devices))
        known = set(session.scalars(select(Device.id).where(Device.id.in_(ids))))
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise BadRequest(f"unknown device {unknown[0]}")
        target = "devices"
    else:
        query = select(Device.id).where(Device.status == "accepted")
        if group is not None:
            query = query.where(Device.group == group)
        target = f"group:{group}" if group is not None else "all"
        if phase_specs is None and (allow_downgrade or not _versioned(session, artifact_name)):
            # nothing to decide per device in Python: the rows are made by the database
            return _create_in_sql(session, query, name, artifact_name, target, times, **options)
        ids = list(session.scalars(query.order_by(Device.created)))
    if not ids:
        raise BadRequest("no devices to deploy to")
    sizes: list[int] = []
    if phase_specs is not None:
        sizes = phases.plan(phase_specs, len(ids))
        phases.check_thresholds(phase_specs, sizes, success_threshold)
    phase_of = [n for n, size in enumerate(sizes, 1) for _ in range(size)] or [None] * len(ids)
    if not allow_downgrade:
        downgrade.check_targets(session, artifact_name, ids)
    dep = Deployment(
        name=name,
        artifact_name=artifact_name,
        **options,
        target=target,
        device_count=len(ids),
        status="pending",
        **times,
    )
    session.add(dep)
    session.flush()
    webhooks.deployment_created(session, dep)
    # in chunks: one list of a million row dicts peaked at 1.0-1.3 GiB (bench/results/
    # server-scale-2026-12-07.md); a chunk at a time keeps it to the ids themselves
    created = utcnow()
    rows = zip(ids, phase_of, strict=True)
    while chunk := list(itertools.islice(rows, INSERT_CHUNK)):
        session.execute(
            DeviceDeployment.__table__.insert(),
            [
                {
                    "deployment_id": dep.id,
                    "device_id": i,
                    "status": "pending",
                    "final": False,
                    "substate": "",
                    "attempts": 0,
                    "phase": phase,
                    "created": created,
                }
                for i, phase in chunk
            ],
        )
    if phase_specs is not None:
        phases.create(
            session,
            dep,
            phase_specs,
            sizes,
            failure=failure_threshold,
            failure_action=failure_action or "pause",
            success=success_threshold,
        )
    return dep


def _versioned(session: Session, artifact_name: str) -> bool:
    """Could an artifact of this name be a downgrade for some device? (downgrade.py: only
    one that provides a `*.version`); then each target is checked, in Python."""
    return any(
        key.endswith(".version")
        for provides in session.scalars(
            select(Artifact.provides).where(Artifact.name == artifact_name)
        )
        for key in provides
    )


def _create_in_sql(
    session: Session,
    query: Select[tuple[str]],
    name: str,
    artifact_name: str,
    target: str,
    times: dict[str, object],
    **options: object,
) -> Deployment:
    """A deployment to a group or to every accepted device, without phases: one
    INSERT ... SELECT from the devices. Built in Python, the rows of 1M devices took
    27-74 s and 1.0-1.3 GiB of server memory (bench/results/server-scale-2026-12-07.md)."""
    dep = Deployment(
        name=name,
        artifact_name=artifact_name,
        target=target,
        device_count=0,
        status="pending",
        **options,
        **times,
    )
    session.add(dep)
    session.flush()
    # the target's WHERE, other columns; in the order the rows were made before (by device)
    rows = query.with_only_columns(
        literal(dep.id),
        Device.id,
        literal("pending"),
        literal(False),
        literal(""),
        literal(0),
        literal(utcnow()),
    ).order_by(Device.created)
    table = DeviceDeployment.__table__
    columns = ["deployment_id", "device_id", "status", "final", "substate", "attempts", "created"]
    insert = table.insert().from_select(columns, rows)
    inserted = session.execute(insert.execution_options(preserve_rowcount=True)).rowcount
    if not inserted:
        raise BadRequest("no devices to deploy to")  # the transaction rolls back
    # what was inserted, not a count read before it: a device accepted in between is counted
    dep.device_count = inserted
    session.flush()
    webhooks.deployment_created(session, dep)
    return dep


def _create_dynamic(
    session: Session,
    *,
    name: str,
    artifact_name: str,
    filter_id: str,
    force_installation: bool,
    max_devices: int | None,
    retries: int,
    **times: object,
) -> Deployment:
    """A deployment to a saved filter: no rows now; devices join at their checks
    (services/dynamic.py). It keeps the filter's terms as they are now."""
    saved = filters.get(session, filter_id)
    dep = Deployment(
        name=name,
        artifact_name=artifact_name,
        force_installation=force_installation,
        max_devices=max_devices,
        retries=retries,
        target=f"filter:{saved.id}",
        device_count=0,
        status="pending",
        dynamic=True,
        filter_id=saved.id,
        filter_name=saved.name,
        filter_terms=list(saved.terms),
        **times,
    )
    session.add(dep)
    session.flush()
    webhooks.deployment_created(session, dep)
    return dep
