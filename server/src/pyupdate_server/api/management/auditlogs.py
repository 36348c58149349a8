"""auditlogs v1: the audit log, in Mender's shape (services/audit.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from pyupdate_server.api.deps import CurrentUser, State
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.db.models import AuditLog
from pyupdate_server.errors import BadRequest
from pyupdate_server.services import audit

router = APIRouter(prefix="/api/management/v1/auditlogs", tags=["audit log"])

Action = Literal[audit.ACTIONS]  # type: ignore[valid-type]
ObjectType = Literal[audit.OBJECT_TYPES]  # type: ignore[valid-type]
_DATE = "Unix time in seconds, or an RFC 3339 date (`2026-12-20T10:00:00Z`), inclusive"


class ActorOut(BaseModel):
    id: str
    type: str
    email: str
    token_id: str | None = None


class ObjectOut(BaseModel):
    id: str
    type: str
    # Mender's per-type details: {"deployment": {"name": ..., "artifact_name": ...}}, ...
    user: dict[str, object] | None = None
    token: dict[str, object] | None = None
    device: dict[str, object] | None = None
    artifact: dict[str, object] | None = None
    deployment: dict[str, object] | None = None
    filter: dict[str, object] | None = None
    integration: dict[str, object] | None = None


class EntryOut(BaseModel):
    actor: ActorOut
    action: str
    object: ObjectOut
    change: str
    time: Timestamp
    address: str
    before: dict[str, object] | None
    after: dict[str, object] | None


def _out(row: AuditLog) -> EntryOut:
    return EntryOut(
        actor=ActorOut(
            id=row.actor_id, type=row.actor_type, email=row.actor_email, token_id=row.token_id
        ),
        action=row.action,
        object=ObjectOut(id=row.object_id, type=row.object_type, **row.object_data),
        change=row.change,
        time=row.time,
        address=row.address,
        before=row.before,
        after=row.after,
    )


def parse_date(name: str, value: str | None) -> dt.datetime | None:
    """Naive UTC from Unix seconds or RFC 3339; BadRequest naming the filter otherwise."""
    if value is None:
        return None
    try:
        if value.isdigit():
            return dt.datetime.fromtimestamp(int(value), dt.UTC).replace(tzinfo=None)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise BadRequest(f"{name}: {value[:40]!r} is not {_DATE}") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name}: {value[:40]!r} has no time zone (add Z for UTC)")
    return parsed.astimezone(dt.UTC).replace(tzinfo=None)


@router.get(
    "/logs",
    description="Admins only. Newest first unless `sort=asc`; `X-Total-Count` says how "
    f"many match. Entries are kept `audit_retention_days` (default 365). Dates: {_DATE}.",
)
def list_logs(
    _: CurrentUser,
    state: State,
    response: Response,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=audit.MAX_PER_PAGE)] = 20,
    start_date: Annotated[str | None, Query(max_length=40, description=_DATE)] = None,
    end_date: Annotated[str | None, Query(max_length=40, description=_DATE)] = None,
    object_type: ObjectType | None = None,
    object_id: Annotated[str | None, Query(max_length=256)] = None,
    actor_id: Annotated[str | None, Query(max_length=36)] = None,
    actor_email: Annotated[str | None, Query(max_length=256)] = None,
    action: Action | None = None,
    sort: Literal["asc", "desc"] = "desc",
) -> list[EntryOut]:
    start = parse_date("start_date", start_date)
    end = parse_date("end_date", end_date)
    if start is not None and end is not None and start > end:
        raise BadRequest("start_date is after end_date")
    query = audit.Query(
        start=start,
        end=end,
        object_type=object_type,
        object_id=object_id,
        actor_id=actor_id,
        actor_email=actor_email,
        action=action,
        newest_first=sort == "desc",
    )
    with state.db.read() as session:
        rows, total = audit.find(session, query, page, per_page)
        response.headers["X-Total-Count"] = str(total)
        return [_out(r) for r in rows]
