"""One-time start-up: what `serve` does once, in the parent, before any worker starts.

With `--workers N` (serve.py) this runs in the parent alone; the workers only open what
it made. Running it in each worker would race: N processes migrating at once, each
creating a secret key, each cleaning the temp dir under the others' uploads.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pyupdate_server.auth.secrets import load_or_create_secret
from pyupdate_server.db.engine import Database, sqlite_path
from pyupdate_server.errors import ConfigError
from pyupdate_server.services.artifacts import ArtifactValidator
from pyupdate_server.settings import Settings
from pyupdate_server.tmpdirs import InstanceDir, claim

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Startup:
    """What start-up made, handed to each worker (pickled into it by uvicorn).

    Args:
        secret: signs JWTs and download links (settings.secret_key or the generated file).
        instance: this server's temp dir and its lock (tmpdirs.py).
        store: the artifact store as it names itself (for the start line).
        metrics_dir: where the workers' Prometheus counters live, summed by /metrics
            (metrics.py); None with one process.
    """

    secret: bytes
    instance: InstanceDir
    store: str
    metrics_dir: Path | None = None


def private_files(settings: Settings) -> None:
    """The data dir 0700, the database and its WAL/SHM 0600: they hold password hashes.

    SQLite gives the WAL and SHM files the database file's mode, so creating that file
    0600 before the first connection is enough; existing files are tightened each start.
    """
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    db_file = sqlite_path(settings.db_url)
    if db_file is None or str(db_file) in ("", ":memory:"):
        return
    os.close(os.open(db_file, os.O_WRONLY | os.O_CREAT, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = db_file.with_name(db_file.name + suffix)
        if path.exists():
            os.chmod(path, 0o600)


def prepare_records(settings: Settings) -> tuple[Database, bytes]:
    """The data dir, the secret and the migrated database: all that `user create` and
    `token create` need (they never touch the temp dir of a server that may be running)."""
    private_files(settings)
    secret = load_or_create_secret(settings.data_dir, settings.secret_key)
    db = Database(settings.db_url)
    db.migrate()
    return db, secret


def check_delta_key(settings: Settings) -> None:
    """A delta signing key that cannot be read stops the start, not the first delta."""
    key = settings.delta_signing_key
    if key is None:
        return
    try:
        with open(key, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ConfigError(f"delta_signing_key: {key}: {exc.strerror}") from None


def start_up(settings: Settings) -> tuple[Startup, int]:
    """Everything done once per `serve`; returns it and the held temp dir lock's descriptor.

    Errors stop the start with one line (ConfigError, DatabaseUnavailable,
    StorageUnavailable) before anything listens.
    """
    from pyupdate_server.app import build_store

    db, secret = prepare_records(settings)
    db.dispose()  # workers open their own connections
    if not settings.secret_key and not db.is_sqlite:
        # a shared database suggests several hosts; each would generate its own key
        # and refuse every token the others issued
        log.warning(
            "secret_key is not set: signing with %s; every server host on one database "
            "must have the same secret_key (docs/scale-out.md)",
            settings.data_dir / "secret.key",
        )
    ArtifactValidator(settings.verify_keys, settings.require_signature).load_keys()
    check_delta_key(settings)
    store = build_store(settings, check=True)
    instance, held = claim(settings.data_dir)
    metrics_dir = None
    if settings.workers > 1:
        metrics_dir = instance.path / "metrics"
        metrics_dir.mkdir(mode=0o700)
    return Startup(secret, instance, str(store), metrics_dir), held
