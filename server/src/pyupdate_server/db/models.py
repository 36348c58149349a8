"""Database tables (SQLAlchemy 2). Schema changes go through Alembic migrations."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # canonical JSON (sorted keys) of the identity map: one device per identity
    identity: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    inventory: Mapped[dict] = mapped_column(default=dict)
    group: Mapped[str | None] = mapped_column(String(128), index=True, default=None)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    check_in: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)


class AuthSet(Base):
    __tablename__ = "auth_sets"
    __table_args__ = (UniqueConstraint("device_id", "pubkey"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    pubkey: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(256), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Mender's role name (services/roles.py); read on every request, never kept in a JWT
    role: Mapped[str] = mapped_column(String(64))


class ApiToken(Base):
    """Personal access tokens (for CI); the JWT carries the id as `jti`."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    expires: Mapped[dt.datetime] = mapped_column(DateTime)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # at most its owner's: the lower of the two applies on every request
    role: Mapped[str] = mapped_column(String(64))


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(256), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    device_types: Mapped[list] = mapped_column(default=list)
    depends: Mapped[dict] = mapped_column(default=dict)
    # canonical JSON of (device_types, depends): name + this is unique (Mender's 409 rule)
    depends_key: Mapped[str] = mapped_column(Text)
    provides: Mapped[dict] = mapped_column(default=dict)
    clears_provides: Mapped[list | None] = mapped_column(JSON, default=None)
    payload_types: Mapped[list] = mapped_column(default=list)
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    blob: Mapped[str] = mapped_column(String(256))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # a delta the server made itself (services/delta_jobs.py): counted in the delta
    # cache and evicted from it, never an upload
    generated: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("name", "depends_key"),)


class Deployment(Base):
    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(256))
    artifact_name: Mapped[str] = mapped_column(String(256))
    # pending (no device started) -> inprogress -> finished
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    aborted: Mapped[bool] = mapped_column(Boolean, default=False)
    force_installation: Mapped[bool] = mapped_column(Boolean, default=False)
    max_devices: Mapped[int | None] = mapped_column(default=None)
    retries: Mapped[int] = mapped_column(default=0)
    target: Mapped[str] = mapped_column(String(256), default="devices")
    device_count: Mapped[int] = mapped_column(default=0)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    # no hand-outs to devices not yet handed it while set (by a person or a threshold)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # phased rollouts (services/phases.py): 0 phases = every device at once
    phase_count: Mapped[int] = mapped_column(default=0)
    phases_started: Mapped[int] = mapped_column(default=0)
    # thresholds: a value and its unit, "count" (devices) or "percent" (of a phase)
    failure_threshold: Mapped[int | None] = mapped_column(default=None)
    failure_unit: Mapped[str | None] = mapped_column(String(8), default=None)
    failure_action: Mapped[str] = mapped_column(String(8), default="pause")
    success_threshold: Mapped[int | None] = mapped_column(default=None)
    success_unit: Mapped[str | None] = mapped_column(String(8), default=None)
    # a dynamic group (services/dynamic.py): the filter's terms as they were at creation;
    # devices get a row when they are handed it, and the deployment stays open
    dynamic: Mapped[bool] = mapped_column(Boolean, default=False)
    filter_id: Mapped[str | None] = mapped_column(String(36), default=None)
    filter_name: Mapped[str | None] = mapped_column(String(256), default=None)
    filter_terms: Mapped[list | None] = mapped_column(JSON, default=None)
    # scheduling (services/schedule.py): not handed out before start_ts nor after end_ts
    start_ts: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    end_ts: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    # "HH:MM-HH:MM" in the device's local time, sent with the deployment (device-api.md)
    install_window: Mapped[str | None] = mapped_column(String(11), default=None)
    # hand out an artifact older than what the device runs (services/downgrade.py)
    allow_downgrade: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_deployments_dynamic_status", "dynamic", "status"),)


class InventoryFilter(Base):
    """A saved inventory filter (Mender's inventory v2 shape): a dynamic group."""

    __tablename__ = "inventory_filters"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    terms: Mapped[list] = mapped_column(default=list)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class DeploymentPhase(Base):
    """One batch of a phased deployment: its devices are the rows with its number."""

    __tablename__ = "deployment_phases"
    __table_args__ = (UniqueConstraint("deployment_id", "number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()  # 1, 2, ...
    batch_size: Mapped[int | None] = mapped_column(default=None)  # percent (Mender)
    batch_count: Mapped[int | None] = mapped_column(default=None)  # devices
    start_ts: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    when_healthy: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(default=0)  # devices in this phase
    started: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    healthy: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    # failures a person accepted by resuming: the failure threshold counts those after
    failures_accepted: Mapped[int] = mapped_column(default=0)


class DeploymentEvent(Base):
    """A decision about a deployment, automatic or a person's, with its numbers."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    phase: Mapped[int | None] = mapped_column(default=None)
    by: Mapped[str] = mapped_column(String(256), default="")  # "" = the server itself
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(default=dict)


class DeviceDeployment(Base):
    """One device's part in one deployment."""

    __tablename__ = "device_deployments"
    __table_args__ = (
        UniqueConstraint("deployment_id", "device_id"),
        Index("ix_dd_device_open", "device_id", "final"),
        # "is any device of this deployment still open?" after every final report
        Index("ix_dd_deployment_open", "deployment_id", "final"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    substate: Mapped[str] = mapped_column(Text, default="")
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    # set when the device is handed the deployment; None = not (or no longer) handed out
    claimed: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    artifact_id: Mapped[str | None] = mapped_column(String(36), default=None)
    phase: Mapped[int | None] = mapped_column(default=None)  # its DeploymentPhase.number
    log: Mapped[list | None] = mapped_column(JSON, default=None)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    # what the device was sent (services/deltas.py): full | delta | fallback (a delta,
    # then the full artifact through its fallback link); None until handed out
    delivery: Mapped[str | None] = mapped_column(String(8), default=None)
    bytes_sent: Mapped[int | None] = mapped_column(BigInteger, default=None)
    full_size: Mapped[int | None] = mapped_column(BigInteger, default=None)


class RateLimit(Base):
    """One fixed-window counter (services/throttle.py): in the database, so every server
    process sharing it counts together."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    expires: Mapped[int] = mapped_column(BigInteger, index=True)


class AuditLog(Base):
    """One management write (or login): who, what, when, from where (services/audit.py)."""

    __tablename__ = "audit_logs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    time: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # "user"
    actor_id: Mapped[str] = mapped_column(String(36), index=True)  # "" for an unknown login
    actor_email: Mapped[str] = mapped_column(String(256))
    token_id: Mapped[str | None] = mapped_column(String(36), default=None)  # a PAT's
    address: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(256), index=True)
    # what names the object for a person (a deployment's name, a user's email)
    object_data: Mapped[dict] = mapped_column(default=dict)
    change: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict | None] = mapped_column(JSON, default=None)
    after: Mapped[dict | None] = mapped_column(JSON, default=None)


class Webhook(Base):
    """A receiver of event notifications (services/webhooks.py), Mender's "webhook"
    integration: a URL, a secret for the HMAC signature, the events it wants."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(2048))
    # hex, as given; the HMAC key is its bytes. Never returned by the API.
    secret: Mapped[str] = mapped_column(String(512), default="")
    events: Mapped[list] = mapped_column(default=list)  # [] = every event
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # deliveries dropped because the outbox was over its cap (webhook_outbox_max)
    dropped: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(Base):
    """The outbox: one event still to be delivered to one webhook. Written in the
    transaction of the change it tells of; deleted once delivered or given up."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent (and signed)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)  # counted when claimed
    next_attempt: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    # a process sending it holds it until then; past it, another may try again
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)


class WebhookAttempt(Base):
    """The delivery log: one attempt to deliver one event (the last few per webhook)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column()
    time: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(default=0)
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    # delivered | retry (another attempt is due) | failed (gave up) | dropped (outbox full)
    outcome: Mapped[str] = mapped_column(String(16))


class DeltaJob(Base):
    """One delta the server makes (services/delta_jobs.py): from the artifact whose image
    is `old_checksum` to `new_artifact_id`. Made once: the row is unique per pair, claimed
    under a lease, and keeps its outcome (a delta artifact, not smaller, or an error)."""

    __tablename__ = "delta_jobs"
    __table_args__ = (UniqueConstraint("new_artifact_id", "old_checksum"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    new_artifact_id: Mapped[str] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    old_checksum: Mapped[str] = mapped_column(String(64))  # rootfs-image.checksum
    old_artifact_id: Mapped[str | None] = mapped_column(String(36), default=None)
    # queued | running | done | not_smaller | failed | skipped (nothing to make it from)
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str] = mapped_column(Text, default="")
    delta_artifact_id: Mapped[str | None] = mapped_column(String(36), default=None)
    delta_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    # the process making it holds it until then; past it, another may take it over
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
