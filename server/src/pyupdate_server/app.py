"""Build the ASGI app from a Settings object: state, routers, error handlers, metrics."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pyupdate_server import __version__
from pyupdate_server.api.devices import auth as device_auth
from pyupdate_server.api.devices import deployments as device_deployments
from pyupdate_server.api.devices import download, inventory
from pyupdate_server.api.management import artifacts, deployments, devices, users
from pyupdate_server.api.management import inventory as mgmt_inventory
from pyupdate_server.auth.jwt import TokenSigner
from pyupdate_server.auth.secrets import load_or_create_secret
from pyupdate_server.db.engine import Database
from pyupdate_server.errors import InsufficientStorage, ServerError, storage_full
from pyupdate_server.metrics import Metrics, MetricsMiddleware
from pyupdate_server.services.artifacts import ArtifactValidator
from pyupdate_server.services.links import LinkSigner
from pyupdate_server.settings import Settings
from pyupdate_server.state import ServerState
from pyupdate_server.storage.local import LocalBlobStore
from pyupdate_server.web import mount_ui

log = logging.getLogger(__name__)


def build_state(settings: Settings) -> ServerState:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tmp_dir = settings.data_dir / "tmp"
    # leftovers of uploads interrupted by a crash: never half a result
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir()
    secret = load_or_create_secret(settings.data_dir, settings.secret_key)
    db = Database(settings.db_url)
    db.migrate()
    validator = ArtifactValidator(settings.verify_keys, settings.require_signature)
    validator.load_keys()
    return ServerState(
        settings=settings,
        db=db,
        store=LocalBlobStore(settings.data_dir / "artifacts"),
        tokens=TokenSigner(secret),
        links=LinkSigner(secret, settings.public_url, settings.download_link_ttl),
        metrics=Metrics(),
        tmp_dir=tmp_dir,
        validator=validator,
    )


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
    )
}


def _error_body(message: str) -> dict[str, str]:
    return {"error": message}


def create_app(settings: Settings) -> FastAPI:
    state = build_state(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.db.dispose()

    app = FastAPI(
        title="pyupdate-server",
        version=__version__,
        description="Mender-compatible device and management APIs (docs/device-api.md, "
        "docs/management-api.md).",
        lifespan=lifespan,
    )
    app.state.server = state

    @app.exception_handler(ServerError)
    async def _server_error(request: Request, exc: ServerError) -> JSONResponse:
        if exc.status_code >= 500:  # the server's fault: the operator must hear of it
            log.error(str(exc), extra={"path": request.url.path})
        return JSONResponse(_error_body(str(exc)), status_code=exc.status_code)

    async def _storage_full(request: Request, exc: Exception) -> JSONResponse:
        """A full disk under SQLite or a file write: 507 and one line, not a 500 traceback."""
        if not storage_full(exc):
            raise exc
        # SQLAlchemy's text carries the SQL and a link over several lines; the driver's is one
        reason = exc.strerror if isinstance(exc, OSError) else getattr(exc, "orig", exc)
        return await _server_error(
            request, InsufficientStorage(f"server storage is full: {reason}")
        )

    app.add_exception_handler(OSError, _storage_full)
    app.add_exception_handler(OperationalError, _storage_full)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return JSONResponse({"error": message, "detail": _jsonable(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(_error_body(str(exc.detail)), status_code=exc.status_code)

    for module in (device_auth, inventory, device_deployments, download):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    for module in (users, devices, mgmt_inventory, artifacts, deployments):
        app.include_router(module.router, responses=ERROR_RESPONSES)

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, str]:
        with state.db.read() as session:
            session.connection().exec_driver_sql("SELECT 1")
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    mount_ui(app)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


def _jsonable(errors: object) -> object:
    import json

    return json.loads(json.dumps(errors, default=str))
