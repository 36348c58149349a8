"""iot-manager v1: webhook integrations, in Mender's shape, and their delivery log.

docs/webhooks.md. Mender's body (`provider` "webhook", `credentials` of type "http" with
`url` and a hex `secret`) plus our `events` (which ones; empty: all) and `enabled`. The
secret is stored and never returned. Admins only (services/roles.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from pyupdate_server.api.deps import CurrentUser, State
from pyupdate_server.api.timefmt import Timestamp
from pyupdate_server.db.models import Webhook, WebhookAttempt
from pyupdate_server.services import outbox, webhooks

PREFIX = "/api/management/v1/iot-manager"
router = APIRouter(prefix=PREFIX, tags=["webhooks"])

Url = Annotated[str, Field(min_length=1, max_length=webhooks.MAX_URL)]
Secret = Annotated[str, Field(max_length=2 * webhooks.MAX_SECRET)]


class _Strict(BaseModel):
    # a field we do not know is refused, never silently ignored
    model_config = ConfigDict(extra="forbid")


class HttpIn(_Strict):
    url: Url
    secret: Secret = ""


class CredentialsIn(_Strict):
    type: Literal["http"]
    http: HttpIn


class IntegrationIn(_Strict):
    provider: Literal["webhook"]
    credentials: CredentialsIn
    description: Annotated[str, Field(max_length=webhooks.MAX_DESCRIPTION)] = ""
    events: Annotated[list[str], Field(max_length=len(webhooks.EVENTS))] = []
    enabled: bool = True


class HttpOut(BaseModel):
    url: str
    secret_set: bool  # the secret itself is never returned


class CredentialsOut(BaseModel):
    type: Literal["http"] = "http"
    http: HttpOut


class IntegrationOut(BaseModel):
    id: str
    provider: Literal["webhook"] = "webhook"
    credentials: CredentialsOut
    description: str
    events: list[str]
    enabled: bool
    created_ts: Timestamp
    pending: int  # events waiting for delivery to it
    dropped: int  # events dropped for it because the outbox was full


class AttemptOut(BaseModel):
    event_id: str
    event_type: str
    attempt: int
    time: Timestamp
    duration_ms: int
    status_code: int | None
    error: str
    outcome: Literal["delivered", "retry", "failed"]


def _out(hook: Webhook, pending: int) -> IntegrationOut:
    return IntegrationOut(
        id=hook.id,
        credentials=CredentialsOut(http=HttpOut(url=hook.url, secret_set=bool(hook.secret))),
        description=hook.description,
        events=list(hook.events),
        enabled=hook.enabled,
        created_ts=hook.created,
        pending=pending,
        dropped=hook.dropped,
    )


def _attempt(row: WebhookAttempt) -> AttemptOut:
    return AttemptOut(
        event_id=row.event_id,
        event_type=row.event_type,
        attempt=row.attempt,
        time=row.time,
        duration_ms=row.duration_ms,
        status_code=row.status_code,
        error=row.error,
        outcome=row.outcome,  # type: ignore[arg-type]
    )


@router.get("/integrations", description="Every webhook, oldest first; secrets never.")
def list_integrations(_: CurrentUser, state: State) -> list[IntegrationOut]:
    with state.db.read() as session:
        hooks = session.scalars(select(Webhook).order_by(Webhook.created, Webhook.id))
        return [_out(h, webhooks.pending(session, h.id)) for h in hooks]


@router.post(
    "/integrations",
    status_code=201,
    response_class=Response,
    description=f"At most {webhooks.MAX_WEBHOOKS} webhooks (409 past it). `url`: http or "
    f"https, at most {webhooks.MAX_URL} characters, no user:password@; `secret`: hex, "
    f"{webhooks.MIN_SECRET} to {webhooks.MAX_SECRET} bytes, or empty (nothing is signed); "
    f"`events`: any of {', '.join(webhooks.EVENTS)} (empty: all).",
)
def create_integration(body: IntegrationIn, user: CurrentUser, state: State) -> Response:
    spec = webhooks.WebhookSpec(
        url=body.credentials.http.url,
        secret=body.credentials.http.secret,
        events=tuple(body.events),
        enabled=body.enabled,
        description=body.description,
    )
    with state.db.write() as session:
        hook = webhooks.create(session, spec, state.settings.webhook_allow_private)
        hook_id = hook.id
        state.audit.record(
            session, user, "create", "integration", hook_id, names={"url": hook.url},
            change=f"webhook to {hook.url} created",
        )  # fmt: skip
    return Response(status_code=201, headers={"Location": f"{PREFIX}/integrations/{hook_id}"})


@router.get("/integrations/{integration_id}")
def get_integration(integration_id: str, _: CurrentUser, state: State) -> IntegrationOut:
    with state.db.read() as session:
        hook = webhooks.get(session, integration_id)
        return _out(hook, webhooks.pending(session, hook.id))


@router.put(
    "/integrations/{integration_id}/credentials",
    status_code=204,
    response_class=Response,
    description="Replace the URL and the secret (Mender's call); events waiting keep "
    "their bodies and go to the new URL, signed with the new secret.",
)
def set_credentials(
    integration_id: str, body: CredentialsIn, user: CurrentUser, state: State
) -> Response:
    with state.db.write() as session:
        hook = webhooks.get(session, integration_id)
        webhooks.check_url(body.http.url, state.settings.webhook_allow_private)
        webhooks.check_secret(body.http.secret)
        before = hook.url
        hook.url = body.http.url
        hook.secret = body.http.secret.lower()
        state.audit.record(
            session, user, "update", "integration", integration_id, names={"url": hook.url},
            change="webhook URL and secret replaced",
            before={"url": before}, after={"url": hook.url},
        )  # fmt: skip
    return Response(status_code=204)


@router.delete("/integrations/{integration_id}", status_code=204, response_class=Response)
def delete_integration(integration_id: str, user: CurrentUser, state: State) -> Response:
    with state.db.write() as session:
        url = webhooks.get(session, integration_id).url
        webhooks.remove(session, integration_id)
        state.audit.record(
            session, user, "delete", "integration", integration_id, names={"url": url},
            change=f"webhook to {url} deleted",
        )  # fmt: skip
    return Response(status_code=204)


@router.get(
    "/integrations/{integration_id}/deliveries",
    description=f"The delivery log: its last {outbox.LOG_SIZE} attempts, newest first.",
)
def list_deliveries(integration_id: str, _: CurrentUser, state: State) -> list[AttemptOut]:
    with state.db.read() as session:
        return [_attempt(a) for a in webhooks.attempts(session, integration_id)]
