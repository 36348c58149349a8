"""Build the ASGI app from a Settings object: state, routers, error handlers, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from pyupdate_server import __version__, limits
from pyupdate_server.api.body_limit import BodyLimitMiddleware
from pyupdate_server.api.devices import auth as device_auth
from pyupdate_server.api.devices import deployments as device_deployments
from pyupdate_server.api.devices import download, full_source, inventory
from pyupdate_server.api.management import (
    artifacts,
    auditlogs,
    deployments,
    deployments_v2,
    devices,
    filters,
    fleet,
    users,
)
from pyupdate_server.api.management import inventory as mgmt_inventory
from pyupdate_server.api.management import webhooks as mgmt_webhooks
from pyupdate_server.auth.jwt import TokenSigner
from pyupdate_server.auth.passwords import PasswordPool
from pyupdate_server.db import dialect
from pyupdate_server.db.engine import Database
from pyupdate_server.delivery import Sender
from pyupdate_server.delta_worker import DeltaWorker
from pyupdate_server.errors import (
    BadRequest,
    Conflict,
    DatabaseUnavailable,
    InsufficientStorage,
    ServerError,
    storage_full,
)
from pyupdate_server.metrics import Metrics, MetricsMiddleware
from pyupdate_server.services.artifacts import ArtifactValidator
from pyupdate_server.services.audit import Auditor
from pyupdate_server.services.links import FULL_SOURCE_PATH, LinkSigner
from pyupdate_server.settings import Settings
from pyupdate_server.startup import Startup, start_up
from pyupdate_server.state import ServerState
from pyupdate_server.storage.base import BlobStore
from pyupdate_server.storage.local import LocalBlobStore
from pyupdate_server.tmpdirs import release
from pyupdate_server.web import mount_ui

log = logging.getLogger(__name__)


def build_store(settings: Settings, check: bool = True) -> BlobStore:
    """The configured artifact store; with `check`, a missing bucket or an unreachable
    endpoint stops the start with one line (ConfigError, exit 2; StorageUnavailable,
    exit 3). Workers skip the check: the parent made it once before they started."""
    if not settings.storage:
        return LocalBlobStore(settings.data_dir / "artifacts")
    from pyupdate_server.storage.s3 import S3BlobStore
    from pyupdate_server.storage.url import parse_storage_url

    store = S3BlobStore(
        parse_storage_url(settings.storage),
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
    )
    if check:
        store.check()
    return store


def build_state(settings: Settings, startup: Startup) -> ServerState:
    """What one server process needs, on top of what start-up made (startup.py)."""
    validator = ArtifactValidator(settings.verify_keys, settings.require_signature)
    validator.load_keys()
    previous = tuple(k.encode() for k in settings.previous_secret_keys)
    return ServerState(
        settings=settings,
        db=Database(settings.db_url),
        store=build_store(settings, check=False),
        tokens=TokenSigner(startup.secret, previous),
        links=LinkSigner(startup.secret, settings.public_url, settings.download_link_ttl, previous),
        full_links=LinkSigner(
            startup.secret,
            settings.public_url,
            settings.download_link_ttl,
            previous,
            purpose=b"delta-full-source:",
            path=FULL_SOURCE_PATH,
        ),
        metrics=Metrics(startup.metrics_dir),
        tmp_dir=startup.instance.path,
        validator=validator,
        passwords=PasswordPool(settings.login_workers, settings.login_queue),
        audit=Auditor(settings.audit_retention_days),
    )


_UPLOAD = "/api/management/v1/deployments/artifacts"
_AUTH = "/api/devices/v1/authentication/auth_requests"
_DEVICE_LOG = "/api/devices/v1/deployments/device/deployments/"


def body_limit(method: str, path: str) -> int | None:
    """The most bytes a request body may have (docs/security.md, "Limits")."""
    if method == "POST" and path.rstrip("/") == _UPLOAD:
        return None  # streamed to disk and capped by max_artifact_size (api/multipart.py)
    if path == _AUTH:
        return limits.MAX_AUTH_BODY
    if path.startswith("/api/devices/v1/inventory/"):
        return limits.MAX_INVENTORY_BODY
    if path.startswith(_DEVICE_LOG) and path.endswith("/log"):
        return limits.MAX_LOG_BODY
    return limits.MAX_JSON_BODY


class ErrorBody(BaseModel):
    """Every 4xx/5xx body: one line saying what is wrong."""

    error: str


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "malformed request"),
        (401, "missing, invalid, expired or revoked credentials"),
        (403, "not allowed"),
        (404, "no such resource"),
        (409, "conflict with the current state"),
        (413, "body too large"),
        (422, "invalid request data"),
        (429, "rate limit or ceiling reached; Retry-After says when to try again"),
        (
            503,
            "the database or the artifact store is unreachable for now; "
            "Retry-After says when to try again",
        ),
    )
}


def _error_body(message: str) -> dict[str, str]:
    return {"error": message}


def create_app(settings: Settings, startup: Startup | None = None) -> FastAPI:
    """The app; without `startup` (one process, tests) it does the start-up itself and
    removes its temp dir when it stops."""
    owner = startup is None
    if startup is None:
        startup, held = start_up(settings)
    else:
        held = startup.instance.hold()  # a worker: the temp dir stays while it runs
    state = build_state(settings, startup)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # What start-up built (modules, routes, schemas, the ORM) lives as long as the
        # process: keep it out of the collector's full passes. Without this a full pass
        # under load held the event loop, and with it every device's poll, for 100-200 ms.
        gc.collect()  # garbage first: what is frozen is never collected
        gc.freeze()
        if settings.workers > 1:  # say which process is up, for the operator and the tests
            log.info("worker [%d] started", os.getpid(), extra={"pid": os.getpid()})
        # webhook deliveries: one loop per process, beside the requests (delivery.py)
        sender = asyncio.create_task(Sender(state.db, settings, state.metrics).run())
        tasks = [sender]
        if settings.delta_generation:  # one delta at a time per host (delta_worker.py)
            worker = DeltaWorker(state.db, state.store, state.validator, settings, state.tmp_dir)
            tasks.append(asyncio.create_task(worker.run()))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        state.passwords.shutdown()
        state.db.dispose()
        if owner:
            release(startup.instance, held)
        else:
            os.close(held)

    app = FastAPI(
        title="pyupdate-server",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.server = state

    @app.exception_handler(ServerError)
    async def _server_error(request: Request, exc: ServerError) -> JSONResponse:
        if exc.status_code >= 500:  # the server's fault: the operator must hear of it
            log.error(str(exc), extra={"path": request.url.path})
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return JSONResponse(_error_body(str(exc)), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        # Python's JSON parser recurses: a body nested thousands deep ends up here
        return JSONResponse(_error_body("request JSON nests too deep"), status_code=400)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # a bug: the operator gets the traceback in the log, the client one line
        log.exception("internal error", extra={"path": request.url.path})
        return JSONResponse(_error_body(f"internal error: {type(exc).__name__}"), status_code=500)

    async def _storage_full(request: Request, exc: Exception) -> JSONResponse:
        """A full disk under SQLite or a file write: 507 and one line, not a 500 traceback."""
        if not storage_full(exc):
            raise exc
        # SQLAlchemy's text carries the SQL and a link over several lines; the driver's is one
        reason = exc.strerror if isinstance(exc, OSError) else getattr(exc, "orig", exc)
        return await _server_error(
            request, InsufficientStorage(f"server storage is full: {reason}")
        )

    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        """The database went away (restart, failover, network): 503 with Retry-After, so
        devices come back later; the transaction rolled back, nothing was half-written."""
        if storage_full(exc):
            return await _storage_full(request, exc)
        if dialect.is_unavailable(exc):
            orig = getattr(exc, "orig", None) or exc
            reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig)
            return await _server_error(
                request, DatabaseUnavailable(f"database unavailable: {reason}")
            )
        if isinstance(exc, IntegrityError):
            # a unique key taken by a concurrent request between our check and our insert
            return await _server_error(
                request, Conflict("conflicts with a concurrent change: try again")
            )
        if isinstance(exc, DataError):
            # what a column cannot hold (a NUL character, an integer past 64 bits)
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            return await _server_error(request, BadRequest(f"value not accepted: {reason}"))
        return await _storage_full(request, exc)

    app.add_exception_handler(OSError, _storage_full)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(SQLAlchemyTimeout, _database_error)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}".replace("\n", " ")[:500]
        errors = list(exc.errors())
        return JSONResponse({"error": message, "detail": _jsonable(errors)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(_error_body(str(exc.detail)), status_code=exc.status_code)

    for module in (device_auth, inventory, device_deployments, download, full_source):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    for module in (
        users,
        devices,
        mgmt_inventory,
        filters,
        artifacts,
        deployments,
        deployments_v2,
        auditlogs,
        mgmt_webhooks,
        fleet,
    ):
        app.include_router(module.router, responses=ERROR_RESPONSES)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers. It does not touch the database, so a database
        outage does not get healthy server processes restarted."""
        return {"status": "ok", "version": __version__}

    @app.get("/health/ready", tags=["ops"], responses={503: ERROR_RESPONSES[503]})
    def ready() -> dict[str, str]:
        """Readiness: the database and the artifact store answer (503 with Retry-After
        when either does not)."""
        state.db.ping()
        state.store.ping()
        return {
            "status": "ready",
            "version": __version__,
            "database": state.db.dialect_name,
            "storage": state.store.name,
        }

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    mount_ui(app)
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


DESCRIPTION = f"""Mender-compatible device and management APIs (docs/device-api.md,
docs/management-api.md). Threat model and every limit: docs/security.md.

Limits, each answered before the work with one line (`{{"error": ...}}`):

| what | limit | answer |
|---|---|---|
| device auth request body | {limits.MAX_AUTH_BODY} bytes | 413 |
| identity data (canonical JSON) | {limits.MAX_IDENTITY} bytes, {limits.MAX_IDENTITY_ATTRS} attributes | 400 |
| inventory body | {limits.MAX_INVENTORY_BODY} bytes | 413 |
| inventory attributes per device | {limits.MAX_INVENTORY_ATTRS} | 413 |
| inventory attribute name / value | {limits.MAX_ATTR_NAME} / {limits.MAX_ATTR_VALUE} characters, {limits.MAX_ATTR_ITEMS} list items | 413 |
| deployment log body / messages | {limits.MAX_LOG_BODY} bytes / {limits.MAX_LOG_MESSAGES} | 413 |
| any other JSON body | {limits.MAX_JSON_BODY} bytes | 413 |
| JSON nesting (bodies, identity, artifact headers) | {limits.MAX_JSON_DEPTH} levels | 400 |
| deployment and artifact names | 256 characters | 422 |
| artifact upload | `max_artifact_size` (16 GiB) | 413 |
| logins | `login_attempts_per_source` per address, `login_failures_per_user` per user, per `login_window` s | 429 |
| new pending devices | `pending_per_source` per address per `pending_window` s; `max_pending_devices` in all | 429 |
"""


def _jsonable(errors: list[dict[str, object]]) -> list[dict[str, object]]:
    """Where and what, without the input: echoing a client's (maybe huge, maybe deeply
    nested) value back costs memory and can itself fail."""
    return [
        {
            "type": str(e.get("type", "")),
            "loc": [str(p) for p in e.get("loc", ())],  # type: ignore[attr-defined]
            "msg": str(e.get("msg", ""))[:500],
        }
        for e in errors[:20]
    ]
