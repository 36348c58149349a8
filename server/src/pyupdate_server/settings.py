"""Server settings: typed, read once from a TOML file and PYUPDATE_SERVER_* variables.

The app is built from one Settings object; tests build their own instead of
patching the environment (STYLE.md, "Settings are read once").
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pyupdate_server.errors import ConfigError

ENV_PREFIX = "PYUPDATE_SERVER_"
MIN_SECRET = 32  # bytes: the HMAC-SHA256 key behind every token and download link
MAX_WORKERS = 64  # far past what one host's cores serve; a typo (800) is refused
_LIMITS = (
    "login_attempts_per_source",
    "login_failures_per_user",
    "login_window",
    "login_workers",
    "login_queue",
    "pending_per_source",
    "pending_window",
    "max_pending_devices",
)
# webhook delivery (docs/webhooks.md, "Delivery"): positive integers, each with a ceiling
WEBHOOK_LIMITS = {
    "webhook_timeout": 60,
    "webhook_max_attempts": 100,
    "webhook_retry_base": 24 * 3600,
    "webhook_concurrency": 256,
    "webhook_outbox_max": 10_000_000,
}
# delta generation (docs/deployments.md, "Delta updates"): integers, (floor, ceiling)
DELTA_LIMITS = {
    "delta_bases": (1, 100),
    "delta_cache_size": (0, 2**62),
    "delta_timeout": (1, 7 * 24 * 3600),
    "delta_memory": (0, 2**62),
    "delta_nice": (0, 19),
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server reads from outside.

    Args:
        data_dir: holds server.db, artifacts/, tmp/ and the secret key file.
        host, port: where `serve` listens.
        workers: server processes `serve` runs on host:port, 1 to 64 (docs/scale-out.md).
        forwarded_allow_ips: comma list of reverse proxy addresses whose X-Forwarded-For
            names the client (the per-source limits' key); default: uvicorn's
            FORWARDED_ALLOW_IPS, else 127.0.0.1.
        public_url: base URL put into download links; default http(s)://host:port.
        tls_cert, tls_key: PEM files; both or neither.
        database_url: `sqlite:///path` or `postgresql://user:password@host:port/db`
            (docs/management-api.md, "PostgreSQL"); default: sqlite:///<data_dir>/server.db.
        storage: where artifact files live: empty for <data_dir>/artifacts (default), or
            `s3://bucket/prefix` (docs/management-api.md, "Object storage (S3)").
        s3_endpoint_url, s3_region, s3_access_key_id, s3_secret_access_key: the S3 store;
            each unset one comes from boto3's usual places (AWS_ENDPOINT_URL, AWS_REGION or
            AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, roles).
        device_token_ttl, user_token_ttl: JWT lifetimes in seconds.
        download_link_ttl: lifetime of signed artifact links in seconds (with S3: of the
            presigned URLs devices download from).
        max_artifact_size: uploads above this many bytes get 413.
        require_signature: refuse unsigned artifacts.
        verify_keys: PEM public keys artifact signatures must verify with.
        log_json: JSON-lines logs instead of text.
        secret_key: signs JWTs and download links, at least 32 bytes; default: generated
            into data_dir.
        previous_secret_keys: old secret keys still accepted (never used to sign), so a
            rotation does not log every device and user out (docs/security.md).
        login_attempts_per_source: logins one client address may try per login_window.
        login_failures_per_user: failed logins one username may have per login_window.
        login_window: seconds over which the two login limits count.
        login_workers: threads that hash passwords (about 16 MiB each while hashing);
            separate from the pool the device routes use.
        login_queue: logins that may wait for a hashing thread; more are answered 429.
        pending_per_source: new pending devices one client address may
            create per pending_window.
        pending_window: seconds over which pending_per_source counts.
        max_pending_devices: ceiling on pending devices; further new devices get 429.
        audit_retention_days: audit log entries older than this are deleted (on a later
            write; docs/management-api.md, "Audit log").
        webhook_timeout: seconds one webhook delivery may take, answer included (1-60).
        webhook_max_attempts: deliveries of one event to one webhook before it is given up.
        webhook_retry_base: seconds before the first retry; each next one waits twice as
            long, at most an hour (docs/webhooks.md, "Retries").
        webhook_concurrency: deliveries in flight at once, per server process.
        webhook_outbox_max: events waiting for delivery, over every webhook; past it the
            oldest are dropped and counted (docs/webhooks.md, "Limits").
        webhook_allow_private: webhook URLs may name loopback, private and link-local
            addresses (on-premises receivers); false refuses them at creation and delivery.
        delta_generation: make deltas in the background for devices that accept them
            (docs/deployments.md, "Delta updates"); false uses uploaded deltas only.
        delta_signing_key: PEM private key that signs the deltas the server makes;
            without one it makes deltas only to unsigned artifacts.
        delta_bases: at a deployment's creation, deltas are made from the this many most
            common images (`rootfs-image.checksum`) among its devices.
        delta_cache_size: bytes the deltas made by the server may take in the store;
            past it the oldest are removed.
        delta_timeout: seconds one delta may take; then its process is killed.
        delta_memory: address space of the process making a delta, bytes (0: no cap).
        delta_nice: the niceness that process runs at, 0-19.
    """

    data_dir: Path = Path("pyupdate-data")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    forwarded_allow_ips: str | None = None
    public_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    database_url: str | None = None
    storage: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    device_token_ttl: int = 7 * 24 * 3600
    user_token_ttl: int = 24 * 3600
    download_link_ttl: int = 3600
    max_artifact_size: int = 16 * 1024**3
    require_signature: bool = False
    verify_keys: tuple[Path, ...] = field(default_factory=tuple)
    log_json: bool = False
    log_level: str = "info"
    secret_key: str | None = None
    previous_secret_keys: tuple[str, ...] = field(default_factory=tuple)
    login_attempts_per_source: int = 30
    login_failures_per_user: int = 10
    login_window: int = 300
    login_workers: int = 1
    login_queue: int = 16
    pending_per_source: int = 1000
    pending_window: int = 600
    max_pending_devices: int = 10_000
    audit_retention_days: int = 365
    webhook_timeout: int = 5
    webhook_max_attempts: int = 8
    webhook_retry_base: int = 30
    webhook_concurrency: int = 8
    webhook_outbox_max: int = 100_000
    webhook_allow_private: bool = True
    delta_generation: bool = True
    delta_signing_key: Path | None = None
    delta_bases: int = 3
    delta_cache_size: int = 10 * 1024**3
    delta_timeout: int = 3600
    delta_memory: int = 4 * 1024**3
    delta_nice: int = 10

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key must be given together")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is out of range")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"workers must be 1 to {MAX_WORKERS}, not {self.workers}")
        if self.require_signature and not self.verify_keys:
            raise ConfigError("require_signature needs at least one verify key")
        if self.database_url:
            from pyupdate_server.db.dialect import parse_url

            parse_url(self.database_url)
        if self.storage:
            from pyupdate_server.storage.url import parse_storage_url

            parse_storage_url(self.storage)
        if self.storage and self.download_link_ttl > 7 * 24 * 3600:
            raise ConfigError("download_link_ttl: S3 presigned URLs last at most 7 days")
        for name in (
            "device_token_ttl",
            "user_token_ttl",
            "download_link_ttl",
            "audit_retention_days",
            *_LIMITS,
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        for name, ceiling in WEBHOOK_LIMITS.items():
            if not 1 <= getattr(self, name) <= ceiling:
                raise ConfigError(f"{name} must be 1 to {ceiling}, not {getattr(self, name)}")
        for name, (floor, ceiling) in DELTA_LIMITS.items():
            if not floor <= getattr(self, name) <= ceiling:
                raise ConfigError(f"{name} must be {floor} to {ceiling}, not {getattr(self, name)}")
        # an empty value means "not set": a key is then generated into data_dir
        for key in (self.secret_key or "", *self.previous_secret_keys):
            if key and len(key.encode()) < MIN_SECRET:
                raise ConfigError(
                    f"secret_key must be at least {MIN_SECRET} bytes (e.g. `openssl rand -hex 32`)"
                )

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'server.db'}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_CASTS = {
    "port": int,
    "workers": int,
    "device_token_ttl": int,
    "user_token_ttl": int,
    "download_link_ttl": int,
    "max_artifact_size": int,
    "audit_retention_days": int,
    **dict.fromkeys(WEBHOOK_LIMITS, int),
    **dict.fromkeys(DELTA_LIMITS, int),
    **dict.fromkeys(_LIMITS, int),
}
_BOOLS = {"require_signature", "log_json", "webhook_allow_private", "delta_generation"}
_PATHS = {"data_dir", "tls_cert", "tls_key", "delta_signing_key"}


def _cast(name: str, value: object) -> object:
    try:
        if name in _CASTS:
            return _integer(value)
        if name in _BOOLS:
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in ("1", "true", "yes", "on")
        if name in _PATHS:
            return Path(str(value))
        if name == "verify_keys":
            items = value if isinstance(value, list) else str(value).split(",")
            return tuple(Path(str(v).strip()) for v in items if str(v).strip())
        if name == "previous_secret_keys":
            items = value if isinstance(value, list) else str(value).split(",")
            return tuple(str(v).strip() for v in items if str(v).strip())
    except ValueError as exc:
        raise ConfigError(f"setting {name}: {exc}") from None
    return value


def _integer(value: object) -> int:
    """An integer, from TOML or text; not a float or a bool cut down to one (2.5 or true)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


def load_settings(
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    **overrides: object,
) -> Settings:
    """File, then environment, then explicit overrides (the CLI flags)."""
    names = {f.name for f in dataclasses.fields(Settings)}
    values: dict[str, object] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{config_file}: {exc}") from None
        for key, value in data.items():
            if key not in names:
                raise ConfigError(f"{config_file}: unknown setting {key!r}")
            values[key] = _cast(key, value)
    env = os.environ if environ is None else environ
    for key, value in env.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower()
            if name == "config":
                continue
            if name not in names:
                raise ConfigError(f"{key}: unknown setting")
            values[name] = _cast(name, value)
    for key, value in overrides.items():
        if value is not None:
            values[key] = _cast(key, value)
    return Settings(**values)  # type: ignore[arg-type]
