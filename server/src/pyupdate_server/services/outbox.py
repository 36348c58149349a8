"""The webhook outbox: claiming due deliveries, recording attempts, keeping it bounded.

docs/webhooks.md, "Delivery". Rows get here by services/webhooks.py's `emit`, in the
transaction of their change; the delivery loop of each server process (delivery.py)
claims them (`claim`), sends them with no transaction open, and records what came of it
(`finish`). A claim counts the attempt and leases the row for the attempt's length, so
each attempt is made by one process, on any number of processes and hosts: on
PostgreSQL the claim skips rows another transaction has locked (FOR UPDATE SKIP
LOCKED), on SQLite it is one short write transaction (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from pyupdate_server.db import dialect
from pyupdate_server.db.models import Webhook, WebhookAttempt, WebhookDelivery, utcnow

LOG_SIZE = 50  # attempts kept per webhook
MAX_BACKOFF = 3600  # seconds
LEASE_MARGIN = 30  # seconds past the attempt's timeout before another process may retry
MAX_ERROR = 300  # characters of an attempt's error kept


@dataclass(frozen=True, slots=True)
class Claim:
    """One attempt a process has leased: what to send, where, and which attempt it is."""

    id: int
    webhook_id: str
    url: str
    secret: str
    event_id: str
    event_type: str
    body: str
    attempt: int


DUE_SQL = (
    "SELECT 1 FROM webhook_deliveries WHERE next_attempt <= :now AND attempts < :max "
    "AND (claimed_until IS NULL OR claimed_until < :now) LIMIT 1"
)


def claim(
    session: Session, limit: int, timeout: int, max_attempts: int, now: dt.datetime | None = None
) -> list[Claim]:
    """Lease up to `limit` due deliveries for one attempt each (the caller's write
    transaction commits the lease before anything is sent)."""
    now = now or utcnow()
    stmt = (
        select(WebhookDelivery)
        .where(
            WebhookDelivery.next_attempt <= now,
            WebhookDelivery.attempts < max_attempts,
            (WebhookDelivery.claimed_until.is_(None)) | (WebhookDelivery.claimed_until < now),
        )
        .order_by(WebhookDelivery.next_attempt, WebhookDelivery.id)
        .limit(limit)
    )
    if not dialect.serializes_writers(session):
        # rows another process is claiming right now are skipped, not waited for
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    if not rows:
        return []
    hooks = {
        h.id: h
        for h in session.scalars(
            select(Webhook).where(Webhook.id.in_({r.webhook_id for r in rows}))
        )
    }
    lease = now + dt.timedelta(seconds=timeout + LEASE_MARGIN)
    out = []
    for row in rows:
        row.attempts += 1
        row.claimed_until = lease
        hook = hooks.get(row.webhook_id)
        if hook is None:
            continue
        out.append(
            Claim(
                row.id,
                hook.id,
                hook.url,
                hook.secret,
                row.event_id,
                row.event_type,
                row.body,
                row.attempts,
            )
        )
    return out


def backoff(attempt: int, base: int) -> float:
    """Seconds before the attempt after `attempt`: base, 2 base, 4 base... at most an
    hour, plus up to a tenth more so receivers that came back are not hit all at once."""
    delay = min(base * 2 ** min(attempt - 1, 30), MAX_BACKOFF)
    return delay * (1 + random.random() / 10)


@dataclass(frozen=True, slots=True)
class Result:
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def finish(session: Session, c: Claim, result: Result, max_attempts: int, retry_base: int) -> str:
    """Record an attempt: delivered (the row goes), retry later, or failed (the row goes);
    the outcome."""
    now = utcnow()
    row = session.get(WebhookDelivery, c.id)
    if row is None or session.get(Webhook, c.webhook_id) is None:
        return "gone"  # the webhook was deleted meanwhile
    if result.delivered:
        outcome = "delivered"
    elif c.attempt >= max_attempts:
        outcome = "failed"
    else:
        outcome = "retry"
    if outcome == "retry":
        row.claimed_until = None
        row.next_attempt = now + dt.timedelta(seconds=backoff(c.attempt, retry_base))
    else:
        session.delete(row)
    log_attempt(session, c.webhook_id, c.event_id, c.event_type, c.attempt, result, outcome, now)
    return outcome


def log_attempt(
    session: Session,
    webhook_id: str,
    event_id: str,
    event_type: str,
    attempt: int,
    result: Result,
    outcome: str,
    now: dt.datetime,
) -> None:
    session.add(
        WebhookAttempt(
            webhook_id=webhook_id,
            event_id=event_id,
            event_type=event_type,
            attempt=attempt,
            time=now,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            error=result.error[:MAX_ERROR],
            outcome=outcome,
        )
    )
    session.flush()
    oldest_kept = session.scalar(
        select(WebhookAttempt.id)
        .where(WebhookAttempt.webhook_id == webhook_id)
        .order_by(WebhookAttempt.id.desc())
        .offset(LOG_SIZE - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        session.execute(
            delete(WebhookAttempt).where(
                WebhookAttempt.webhook_id == webhook_id, WebhookAttempt.id < oldest_kept
            )
        )


def give_up_lost(session: Session, max_attempts: int) -> int:
    """Rows whose last attempt's process died after the last allowed claim: failed."""
    now = utcnow()
    rows = list(
        session.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.attempts >= max_attempts, WebhookDelivery.claimed_until < now
            )
        )
    )
    for row in rows:
        lost = Result(None, "no result: the server process sending it stopped", 0)
        log_attempt(
            session, row.webhook_id, row.event_id, row.event_type, row.attempts, lost, "failed", now
        )
        session.delete(row)
    return len(rows)


def drop_over_cap(session: Session, cap: int) -> int:
    """Keep at most `cap` deliveries waiting: drop the oldest, count them per webhook."""
    threshold = session.scalar(
        select(WebhookDelivery.id).order_by(WebhookDelivery.id.desc()).offset(cap).limit(1)
    )
    if threshold is None:
        return 0
    per_hook = dict(
        session.execute(
            select(WebhookDelivery.webhook_id, func.count())
            .where(WebhookDelivery.id <= threshold)
            .group_by(WebhookDelivery.webhook_id)
        ).all()
    )
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.id <= threshold))
    for hook_id, n in per_hook.items():
        session.execute(
            update(Webhook).where(Webhook.id == hook_id).values(dropped=Webhook.dropped + n)
        )
    return sum(per_hook.values())
