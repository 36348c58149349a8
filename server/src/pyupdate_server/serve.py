"""`pyupdate-server serve`: one process, or a parent and `workers` processes on one socket.

With `workers` > 1 uvicorn's supervisor runs them: the parent binds host:port once,
starts each worker (a fresh interpreter, `spawn`) with the socket, restarts a worker
that dies (SIGKILL, a crash), stops them all on SIGTERM or SIGINT, and on SIGHUP
replaces them one by one. The parent does the one-time start-up first (startup.py:
migrations, the secret, the temp dir, the store check), so a worker only opens what
exists, and hands each worker the settings and the start-up's results by pickle,
never through files or the environment (docs/scale-out.md).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from functools import partial
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from pyupdate_server.app import create_app
from pyupdate_server.db.dialect import safe_url
from pyupdate_server.log import setup_logging
from pyupdate_server.settings import Settings
from pyupdate_server.startup import Startup, start_up
from pyupdate_server.tmpdirs import release

log = logging.getLogger(__name__)

# A stop waits at most this long for open connections: an idle TLS keep-alive client
# otherwise holds it for asyncio's 30 s TLS close, and a download cut here is resumed
# by the device with Range.
GRACEFUL_STOP = 10
# prometheus_client reads it when a worker imports it (metrics.py)
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "ssl_certfile": str(settings.tls_cert) if settings.tls_cert else None,
        "ssl_keyfile": str(settings.tls_key) if settings.tls_key else None,
        "log_config": None,
        "access_log": False,
        "http": "httptools" if _has("httptools") else "h11",
        "loop": "uvloop" if _has("uvloop") else "asyncio",
        "timeout_graceful_shutdown": GRACEFUL_STOP,
        # behind a proxy the per-source limits need the client's address, not the proxy's
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


def worker_app(settings: Settings, startup: Startup) -> FastAPI:
    """The app in a worker process (uvicorn calls it there: an app factory)."""
    os.umask(0o077)  # inherited already; said again because the files are private
    setup_logging(settings.log_level, settings.log_json)
    return create_app(settings, startup)


def serve(settings: Settings) -> int:
    """Start up once, then serve until SIGTERM or SIGINT; the exit code."""
    # everything the server creates (database, WAL, keys, uploads, logs it is pointed
    # at) is for its own user only; startup.py also sets the modes explicitly
    os.umask(0o077)
    setup_logging(settings.log_level, settings.log_json)
    startup, held = start_up(settings)
    try:
        processes = f", {settings.workers} workers" if settings.workers > 1 else ""
        print(
            f"pyupdate-server listening on {settings.base_url} (data in {settings.data_dir}, "
            f"database {safe_url(settings.db_url)}, artifacts in {startup.store}{processes})",
            flush=True,
        )
        if settings.workers == 1:
            uvicorn.run(create_app(settings, startup), **_uvicorn_options(settings))
            return 0
        return _supervise(settings, startup)
    finally:
        release(startup.instance, held)


def _supervise(settings: Settings, startup: Startup) -> int:
    assert startup.metrics_dir is not None
    os.environ[METRICS_ENV] = str(startup.metrics_dir)
    config = uvicorn.Config(
        partial(worker_app, settings, startup),
        factory=True,
        workers=settings.workers,
        **_uvicorn_options(settings),
    )
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    failed = [p.pid for p in supervisor.processes if p.exitcode == STARTUP_FAILURE]
    if failed:
        # a worker could not start (its own log line says why): the same would happen
        # to every restart, so uvicorn stopped them all
        log.error("a worker failed to start; stopped", extra={"pids": failed})
        return 1
    return 0
