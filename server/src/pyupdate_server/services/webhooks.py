"""Webhooks: the events, and the endpoints they go to.

docs/webhooks.md. `emit` is called inside the write transaction of the change an event
tells of, and only adds rows to the outbox (`webhook_deliveries`, one per webhook that
wants the event): the event commits with its change or not at all, and sending never
happens inside a request. Claiming, retrying and bounding the outbox: services/outbox.py;
sending: delivery.py. At most MAX_WEBHOOKS endpoints.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from pyupdate_server.db.models import (
    Deployment,
    Device,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    new_id,
    utcnow,
)
from pyupdate_server.errors import BadRequest, Conflict, NotFound
from pyupdate_server.services import outbox

DEVICE_EVENTS = (
    "device-provisioned",  # accepted for the first time (Mender's name)
    "device-status-changed",  # any change of its admission status (Mender's name)
    "device-decommissioned",  # decommissioned or removed (Mender's name)
    "device-inventory-changed",  # its inventory differs from before (Mender's name)
)
DEPLOYMENT_EVENTS = (
    "deployment-created",
    "deployment-phase-started",
    "deployment-phase-healthy",
    "deployment-paused",
    "deployment-resumed",
    "deployment-aborted",
    "deployment-finished",
    "deployment-device-failed",
)
EVENTS = DEVICE_EVENTS + DEPLOYMENT_EVENTS
# the deployment decision log's kinds (phases.record) that are events
DECISIONS = {
    "phase_started": "deployment-phase-started",
    "healthy": "deployment-phase-healthy",
    "paused": "deployment-paused",
    "resumed": "deployment-resumed",
    "aborted": "deployment-aborted",
}

MAX_WEBHOOKS = 20
MAX_URL = 2048
MAX_DESCRIPTION = 1024  # Mender's integration description limit
MIN_SECRET, MAX_SECRET = 16, 256  # bytes, given as hex


# -- events ---------------------------------------------------------------------------


def format_ts(value: dt.datetime) -> str:
    """Naive UTC (the database's) as RFC 3339 with a Z, as the APIs write it."""
    return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


def emit(session: Session, event: str, data: Mapping[str, object]) -> None:
    """Queue `event` for every enabled webhook that wants it, in `session`'s transaction.

    The body is built once, here: every webhook and every retry gets the same bytes and
    the same event id (receivers deduplicate on it).
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    hooks = session.execute(select(Webhook.id, Webhook.events).where(Webhook.enabled.is_(True)))
    targets = [hook_id for hook_id, events in hooks if not events or event in events]
    if not targets:
        return
    now = utcnow()
    event_id = new_id()
    body = json.dumps(
        {"id": event_id, "type": event, "time": format_ts(now), "data": dict(data)},
        separators=(",", ":"),
        default=str,
    )
    session.execute(
        insert(WebhookDelivery),
        [
            {
                "webhook_id": hook_id,
                "event_id": event_id,
                "event_type": event,
                "body": body,
                "created": now,
                "attempts": 0,
                "next_attempt": now,
            }
            for hook_id in targets
        ],
    )


def device_status(session: Session, device: Device, previous: str | None) -> None:
    """Events for a device whose status went from `previous` to `device.status`."""
    if device.status == previous:
        return
    if device.status == "decommissioned":
        emit(session, "device-decommissioned", {"id": device.id})
        return
    emit(
        session,
        "device-status-changed",
        {"id": device.id, "status": device.status, "previous_status": previous},
    )
    if device.status == "accepted" and previous != "accepted":
        emit(
            session,
            "device-provisioned",
            {
                "id": device.id,
                "status": device.status,
                "identity_data": json.loads(device.identity),
                "created_ts": format_ts(device.created),
            },
        )


def inventory(session: Session, device_id: str, attributes: Mapping[str, object]) -> None:
    emit(
        session,
        "device-inventory-changed",
        {"id": device_id, "inventory": [{"name": k, "value": v} for k, v in attributes.items()]},
    )


def deployment(dep: Deployment, **extra: object) -> dict[str, object]:
    """What a deployment event says of its deployment."""
    return {
        "id": dep.id,
        "name": dep.name,
        "artifact_name": dep.artifact_name,
        "status": dep.status,
        "paused": dep.paused,
        "aborted": dep.aborted,
        **extra,
    }


def deployment_created(session: Session, dep: Deployment) -> None:
    data = deployment(dep, target=dep.target, device_count=dep.device_count)
    emit(session, "deployment-created", data)


def deployment_finished(session: Session, dep: Deployment, stats: Mapping[str, int]) -> None:
    emit(session, "deployment-finished", deployment(dep, statistics=dict(stats)))


def decision(
    session: Session,
    dep: Deployment,
    kind: str,
    message: str,
    phase: int | None,
    by: str,
    numbers: Mapping[str, object],
) -> None:
    """A decision of the deployment's log (phases.record) that is an event: emit it."""
    event = DECISIONS.get(kind)
    if event is None:
        return
    data = deployment(dep, phase=phase, message=message, by=by, numbers=dict(numbers))
    # a threshold records its decision before it sets the flag: say what was decided
    if kind in ("paused", "aborted"):
        data[kind] = True
    emit(session, event, data)


def device_failed(session: Session, dep: Deployment | None, device_id: str, attempt: int) -> None:
    if dep is not None:
        emit(
            session,
            "deployment-device-failed",
            deployment(dep, device_id=device_id, attempt=attempt),
        )


# -- endpoints ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    url: str
    secret: str = ""
    events: tuple[str, ...] = ()
    enabled: bool = True
    description: str = ""


def check_url(url: str, allow_private: bool) -> None:
    """BadRequest, one line, unless `url` is one we may POST to (docs/webhooks.md)."""
    if len(url) > MAX_URL:
        raise BadRequest(f"url: longer than {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise BadRequest("url: contains white space or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"url: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BadRequest(f"url: scheme must be http or https, not {parts.scheme[:16]!r}")
    if not parts.hostname:
        raise BadRequest("url: no host")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("url: must not carry credentials (user:password@); use the secret")
    if parts.fragment:
        raise BadRequest("url: must not have a #fragment")
    if not allow_private:
        for address in resolve(parts.hostname, port or (443 if parts.scheme == "https" else 80)):
            if not public_address(address):
                raise BadRequest(
                    f"url: {parts.hostname} is {address}, not a public address "
                    "(webhook_allow_private is off)"
                )


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BadRequest(f"url: {host} does not resolve: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_secret(secret: str) -> None:
    if not secret:
        return  # allowed, as in Mender: then nothing is signed
    try:
        key = bytes.fromhex(secret)
    except ValueError:
        raise BadRequest("secret: must be hex (e.g. from `openssl rand -hex 32`)") from None
    if not MIN_SECRET <= len(key) <= MAX_SECRET:
        raise BadRequest(f"secret: must be {MIN_SECRET} to {MAX_SECRET} bytes, not {len(key)}")


def check_events(events: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(events))
    for event in out:
        if event not in EVENTS:
            raise BadRequest(f"events: unknown event {event[:64]!r}; known: {', '.join(EVENTS)}")
    return out


def create(session: Session, spec: WebhookSpec, allow_private: bool) -> Webhook:
    check_url(spec.url, allow_private)
    check_secret(spec.secret)
    events = check_events(spec.events)
    if len(spec.description) > MAX_DESCRIPTION:
        raise BadRequest(f"description: longer than {MAX_DESCRIPTION} characters")
    count = session.scalar(select(func.count()).select_from(Webhook)) or 0
    if count >= MAX_WEBHOOKS:
        raise Conflict(f"there are {MAX_WEBHOOKS} webhooks already: delete one first")
    hook = Webhook(
        url=spec.url,
        secret=spec.secret.lower(),
        events=list(events),
        enabled=spec.enabled,
        description=spec.description,
        created=utcnow(),
        dropped=0,
    )
    session.add(hook)
    session.flush()
    return hook


def get(session: Session, webhook_id: str) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"integration {webhook_id} not found")
    return hook


def remove(session: Session, webhook_id: str) -> None:
    hook = get(session, webhook_id)
    # the outbox and the log go with it (ON DELETE CASCADE; SQLite runs with foreign_keys=ON)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.webhook_id == hook.id))
    session.delete(hook)


def attempts(session: Session, webhook_id: str) -> list[WebhookAttempt]:
    get(session, webhook_id)
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.webhook_id == webhook_id)
            .order_by(WebhookAttempt.id.desc())
            .limit(outbox.LOG_SIZE)
        )
    )


def pending(session: Session, webhook_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
        )
        or 0
    )
