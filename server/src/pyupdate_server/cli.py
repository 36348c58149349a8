"""`pyupdate-server serve | user create | token create | db copy`: the only place errors
become exit codes.

Exit codes: 0 ok, 2 bad input or configuration, 3 the database or the object store is
unreachable (try again later), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyupdate_server.errors import ServerError
from pyupdate_server.settings import Settings, load_settings


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML settings file (or PYUPDATE_SERVER_CONFIG)")
    p.add_argument("--data-dir", type=Path, help="database, artifacts and secret key")
    p.add_argument(
        "--database-url",
        help="sqlite:///path or postgresql://user:password@host:port/db "
        "(or PYUPDATE_SERVER_DATABASE_URL; default: server.db in the data dir)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyupdate-server", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--tls-cert", type=Path)
    serve.add_argument("--tls-key", type=Path)
    serve.add_argument("--public-url", help="base URL put into download links")
    serve.add_argument("--log-json", action="store_true", default=None, help="JSON-lines logs")
    serve.add_argument(
        "--storage",
        help="s3://bucket/prefix for an S3-compatible object store (or PYUPDATE_SERVER_STORAGE; "
        "default: artifacts/ in the data dir)",
    )
    serve.add_argument(
        "--s3-endpoint-url", help="the object store's URL (or AWS_ENDPOINT_URL; default: AWS)"
    )
    serve.add_argument("--s3-region", help="the object store's region (or AWS_REGION)")
    user = sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(dest="action", required=True)
    create = user_sub.add_parser("create", help="create a user")
    _common(create)
    create.add_argument("--username", required=True)
    create.add_argument("--password", required=True)
    spec = sub.add_parser("openapi", help="print the OpenAPI document (docs/openapi.json)")
    _common(spec)
    token = sub.add_parser("token", help="personal access tokens for CI")
    token_sub = token.add_subparsers(dest="action", required=True)
    tcreate = token_sub.add_parser("create", help="print a new token for a user")
    _common(tcreate)
    tcreate.add_argument("--username", required=True)
    tcreate.add_argument("--name", required=True)
    tcreate.add_argument("--expires-in", type=int, default=365 * 24 * 3600, help="seconds")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="action", required=True)
    copy = db_sub.add_parser(
        "copy", help="copy every record into a new, empty database (e.g. SQLite to PostgreSQL)"
    )
    copy.add_argument("--from", dest="source", required=True, help="database URL to read")
    copy.add_argument("--to", dest="target", required=True, help="empty database URL to fill")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    import os

    config = getattr(args, "config", None) or (
        Path(os.environ["PYUPDATE_SERVER_CONFIG"])
        if "PYUPDATE_SERVER_CONFIG" in os.environ
        else None
    )
    overrides = {
        "data_dir": getattr(args, "data_dir", None),
        "database_url": getattr(args, "database_url", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "tls_cert": getattr(args, "tls_cert", None),
        "tls_key": getattr(args, "tls_key", None),
        "public_url": getattr(args, "public_url", None),
        "log_json": getattr(args, "log_json", None),
        "storage": getattr(args, "storage", None),
        "s3_endpoint_url": getattr(args, "s3_endpoint_url", None),
        "s3_region": getattr(args, "s3_region", None),
    }
    return load_settings(config, **overrides)


def _serve(settings: Settings) -> int:
    import os

    import uvicorn

    # everything the server creates (database, WAL, keys, uploads, logs it is pointed
    # at) is for its own user only; app.py also sets the modes explicitly
    os.umask(0o077)
    from pyupdate_server.app import create_app
    from pyupdate_server.log import setup_logging

    setup_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    from pyupdate_server.db.dialect import safe_url

    print(
        f"pyupdate-server listening on {settings.base_url} (data in {settings.data_dir}, "
        f"database {safe_url(settings.db_url)}, artifacts in {app.state.server.store})",
        flush=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        log_config=None,
        access_log=False,
        http="httptools" if _has("httptools") else "h11",
        loop="uvloop" if _has("uvloop") else "asyncio",
        # A stop waits at most this long for open connections: an idle TLS keep-alive
        # client otherwise holds it for asyncio's 30 s TLS close, and a download cut
        # here is resumed by the device with Range.
        timeout_graceful_shutdown=10,
    )
    return 0


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _user_create(settings: Settings, username: str, password: str) -> int:
    from pyupdate_server.app import build_state
    from pyupdate_server.services.users import create_user

    state = build_state(settings)
    with state.db.write() as session:
        user = create_user(session, username, password)
        print(user.id)
    return 0


def _token_create(settings: Settings, username: str, name: str, expires_in: int) -> int:
    from pyupdate_server.app import build_state
    from pyupdate_server.services.users import create_token, find_user

    state = build_state(settings)
    with state.db.write() as session:
        user = find_user(session, username)
        token = create_token(session, user.id, name, expires_in)
        token_id, user_id = token.id, user.id
    print(state.tokens.issue(user_id, "pat", expires_in, token_id))
    return 0


def _openapi(settings: Settings) -> int:
    import json
    import tempfile

    from pyupdate_server.app import create_app

    # the document does not depend on the data; build the app on a throw-away dir
    with tempfile.TemporaryDirectory() as tmp:
        spec = create_app(settings.replace(data_dir=Path(tmp))).openapi()
    print(json.dumps(spec, indent=2, sort_keys=True))
    return 0


def _db_copy(source: str, target: str) -> int:
    from pyupdate_server.db.copy import copy_database

    counts = copy_database(source, target)
    print(", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "db":
            return _db_copy(args.source, args.target)
        settings = _settings(args)
        if args.command == "serve":
            return _serve(settings)
        if args.command == "openapi":
            return _openapi(settings)
        if args.command == "user":
            return _user_create(settings, args.username, args.password)
        return _token_create(settings, args.username, args.name, args.expires_in)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
