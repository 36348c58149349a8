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
    serve.add_argument(
        "--workers",
        help="server processes on this host and port, 1 to 64 (or PYUPDATE_SERVER_WORKERS; "
        "default 1; docs/scale-out.md)",
    )
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
    create.add_argument(
        "--role",
        default="admin",
        help="admin, release-manager or read-only (or Mender's RBAC_ROLE_* names; "
        'default admin; docs/management-api.md, "Roles")',
    )
    spec = sub.add_parser("openapi", help="print the OpenAPI document (docs/openapi.json)")
    _common(spec)
    token = sub.add_parser("token", help="personal access tokens for CI")
    token_sub = token.add_subparsers(dest="action", required=True)
    tcreate = token_sub.add_parser("create", help="print a new token for a user")
    _common(tcreate)
    tcreate.add_argument("--username", required=True)
    tcreate.add_argument("--name", required=True)
    tcreate.add_argument("--expires-in", type=int, default=365 * 24 * 3600, help="seconds")
    tcreate.add_argument("--role", help="at most the user's role (default: the user's)")
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
        "workers": getattr(args, "workers", None),
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
    from pyupdate_server.serve import serve

    return serve(settings)


def _user_create(settings: Settings, username: str, password: str, role_name: str) -> int:
    from pyupdate_server.services.audit import SYSTEM, Auditor
    from pyupdate_server.services.roles import parse_role
    from pyupdate_server.services.users import create_user
    from pyupdate_server.startup import prepare_records

    role = parse_role(role_name)
    db, _ = prepare_records(settings)
    with db.write() as session:
        user = create_user(session, username, password, role)
        Auditor(settings.audit_retention_days).record(
            session,
            SYSTEM,
            "create",
            "user",
            user.id,
            names={"email": user.email},
            change=f"user {user.email} created with role {role.value}",
            after={"roles": [role.value]},
        )
        print(user.id)
    return 0


def _token_create(
    settings: Settings, username: str, name: str, expires_in: int, role_name: str | None
) -> int:
    from pyupdate_server.auth.jwt import TokenSigner
    from pyupdate_server.services.audit import SYSTEM, Auditor
    from pyupdate_server.services.roles import parse_role
    from pyupdate_server.services.users import create_token, find_user
    from pyupdate_server.startup import prepare_records

    role = parse_role(role_name) if role_name is not None else None
    db, secret = prepare_records(settings)
    with db.write() as session:
        user = find_user(session, username)
        token = create_token(session, user.id, name, expires_in, role)
        token_id, user_id = token.id, user.id
        Auditor(settings.audit_retention_days).record(
            session,
            SYSTEM,
            "create",
            "token",
            token_id,
            names={"name": name},
            change=f"token {name} of {user.email} with role {token.role}",
            after={"roles": [token.role]},
        )
    previous = tuple(k.encode() for k in settings.previous_secret_keys)
    print(TokenSigner(secret, previous).issue(user_id, "pat", expires_in, token_id))
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
            return _user_create(settings, args.username, args.password, args.role)
        return _token_create(settings, args.username, args.name, args.expires_in, args.role)
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
