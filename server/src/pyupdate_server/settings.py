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


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server reads from outside.

    Args:
        data_dir: holds server.db, artifacts/, tmp/ and the secret key file.
        host, port: where `serve` listens.
        public_url: base URL put into download links; default http(s)://host:port.
        tls_cert, tls_key: PEM files; both or neither.
        database_url: SQLAlchemy URL; default sqlite in data_dir.
        device_token_ttl, user_token_ttl: JWT lifetimes in seconds.
        download_link_ttl: lifetime of signed artifact links in seconds.
        max_artifact_size: uploads above this many bytes get 413.
        require_signature: refuse unsigned artifacts.
        verify_keys: PEM public keys artifact signatures must verify with.
        log_json: JSON-lines logs instead of text.
        secret_key: signs JWTs and download links; default: generated into data_dir.
    """

    data_dir: Path = Path("pyupdate-data")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    database_url: str | None = None
    device_token_ttl: int = 7 * 24 * 3600
    user_token_ttl: int = 24 * 3600
    download_link_ttl: int = 3600
    max_artifact_size: int = 16 * 1024**3
    require_signature: bool = False
    verify_keys: tuple[Path, ...] = field(default_factory=tuple)
    log_json: bool = False
    log_level: str = "info"
    secret_key: str | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key must be given together")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is out of range")
        if self.require_signature and not self.verify_keys:
            raise ConfigError("require_signature needs at least one verify key")
        for name in ("device_token_ttl", "user_token_ttl", "download_link_ttl"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")

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
    "device_token_ttl": int,
    "user_token_ttl": int,
    "download_link_ttl": int,
    "max_artifact_size": int,
}
_BOOLS = {"require_signature", "log_json"}
_PATHS = {"data_dir", "tls_cert", "tls_key"}


def _cast(name: str, value: object) -> object:
    try:
        if name in _CASTS:
            return int(value)  # type: ignore[call-overload]
        if name in _BOOLS:
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in ("1", "true", "yes", "on")
        if name in _PATHS:
            return Path(str(value))
        if name == "verify_keys":
            items = value if isinstance(value, list) else str(value).split(",")
            return tuple(Path(str(v).strip()) for v in items if str(v).strip())
    except ValueError as exc:
        raise ConfigError(f"setting {name}: {exc}") from None
    return value


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
