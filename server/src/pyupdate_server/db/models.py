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


class ApiToken(Base):
    """Personal access tokens (for CI); the JWT carries the id as `jti`."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    expires: Mapped[dt.datetime] = mapped_column(DateTime)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


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


class DeviceDeployment(Base):
    """One device's part in one deployment."""

    __tablename__ = "device_deployments"
    __table_args__ = (
        UniqueConstraint("deployment_id", "device_id"),
        Index("ix_dd_device_open", "device_id", "final"),
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
    log: Mapped[list | None] = mapped_column(JSON, default=None)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)


class RateLimit(Base):
    """One fixed-window counter (services/throttle.py): in the database, so every server
    process sharing it counts together."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    expires: Mapped[int] = mapped_column(BigInteger, index=True)
