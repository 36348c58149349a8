"""The daemon's own settings, read from the same mender.conf-style file.

Mender's managed-mode keys (ServerURL, the poll intervals, ServerCertificate,
SkipVerify, RebootCommand) are typed fields of `Config` already. The keys below
are daemon-only; they sit in `Config.extra` (the keys config.py does not know)
and are matched case-insensitively here, as Go's encoding/json would. A wrong
type is a ConfigError naming the key. Defaults and meaning: docs/agent.md,
"Managed mode".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..errors import ConfigError

KEY_TYPES = ("rsa", "ecdsa", "ed25519")


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """Args:
    server_url: ServerURL (required for the daemon).
    tenant_token: TenantToken, sent with the auth request (Mender's hosted servers).
    key_path: the device key, `Security.AuthPrivateKey` or `<data>/pyupdate-agent.pem`.
    key_type: DeviceKeyType for a new key: rsa (3072, Mender's default), ecdsa, ed25519.
    identity_script: IdentityScript; None = discovery (docs/agent.md).
    identity_dirs, inventory_dirs: IdentityDirs / InventoryDirs search paths.
    update_poll, inventory_poll, retry_poll: the three poll intervals in seconds.
    jitter: PollJitter, the fraction (0..0.5) by which each wait is spread at random.
    commit_deadline: CommitReportDeadlineSeconds: after the reboot into a new update,
        how long the server may stay unreachable before the device rolls back.
    reboot_command: RebootCommand (argv split on spaces).
    reboot_wait: RebootWaitSeconds: still alive this long after the reboot command = failure.
    download_resumes / download_seconds: DownloadMaxResumes / DownloadResumeSeconds,
        bounds on resuming one download.
    request_timeout: RequestTimeoutSeconds, per request (connect and each read).
    pid_file: PidFile, default `<data>/pyupdate.pid`.
    """

    server_url: str
    tenant_token: str
    key_path: Path
    key_type: str
    identity_script: str | None
    identity_dirs: tuple[str, ...]
    inventory_dirs: tuple[str, ...]
    update_poll: int
    inventory_poll: int
    retry_poll: int
    jitter: float
    commit_deadline: int
    reboot_command: str
    reboot_wait: int
    download_resumes: int
    download_seconds: int
    request_timeout: float
    pid_file: Path


_DEFAULTS: dict[str, object] = {
    "TenantToken": "",
    "DeviceKeyType": "rsa",
    "IdentityScript": None,
    "IdentityDirs": ["/usr/share/pyupdate/identity"],
    "InventoryDirs": ["/usr/share/pyupdate/inventory", "/usr/share/mender/inventory"],
    "PollJitter": 0.1,
    "CommitReportDeadlineSeconds": 1800,
    "RebootWaitSeconds": 600,
    "DownloadMaxResumes": 10,
    "DownloadResumeSeconds": 600,
    "RequestTimeoutSeconds": 30,
    "PidFile": None,
    "Security": None,
}


def _extra(config: Config) -> dict[str, object]:
    wanted = {k.lower(): k for k in _DEFAULTS}
    found: dict[str, object] = dict(_DEFAULTS)
    for name, value in config.extra.items():
        key = wanted.get(str(name).lower())
        if key is not None:
            found[key] = value
    return found


def _typed(key: str, value: object, kind: type | tuple[type, ...]) -> object:
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{key}: must be a {getattr(kind, '__name__', 'number')}")
    if not isinstance(value, kind):
        name = getattr(kind, "__name__", "number")
        raise ConfigError(f"{key}: must be a {name}")
    return value


def _positive(key: str, value: object) -> int:
    number = _typed(key, value, int)
    assert isinstance(number, int)
    if number <= 0:
        raise ConfigError(f"{key}: must be a positive number of seconds")
    return number


def _strlist(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: must be a list of strings")
    return tuple(value)


def daemon_settings(config: Config, data_dir: Path) -> DaemonSettings:
    """The daemon's settings; ConfigError names the first bad key."""
    if not config.server_url:
        raise ConfigError("ServerURL: must be set to run the daemon")
    x = _extra(config)
    key_type = str(_typed("DeviceKeyType", x["DeviceKeyType"], str)).lower()
    if key_type not in KEY_TYPES:
        raise ConfigError(f"DeviceKeyType: {key_type!r} is not one of {', '.join(KEY_TYPES)}")
    security = x["Security"] or {}
    if not isinstance(security, dict):
        raise ConfigError("Security: must be an object")
    key_path = next((v for k, v in security.items() if k.lower() == "authprivatekey"), None)
    if key_path is not None and not isinstance(key_path, str):
        raise ConfigError("Security.AuthPrivateKey: must be a path string")
    jitter = _typed("PollJitter", x["PollJitter"], (int, float))
    assert isinstance(jitter, int | float)
    if not 0 <= jitter <= 0.5:
        raise ConfigError("PollJitter: must be between 0 and 0.5")
    timeout = _typed("RequestTimeoutSeconds", x["RequestTimeoutSeconds"], (int, float))
    assert isinstance(timeout, int | float)
    if timeout <= 0:
        raise ConfigError("RequestTimeoutSeconds: must be positive")
    identity = x["IdentityScript"]
    if identity is not None and not isinstance(identity, str):
        raise ConfigError("IdentityScript: must be a path string")
    pid_file = x["PidFile"]
    if pid_file is not None and not isinstance(pid_file, str):
        raise ConfigError("PidFile: must be a path string")
    for name in ("update_poll_interval_seconds", "inventory_poll_interval_seconds"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name}: must be a positive number of seconds")
    if config.retry_poll_interval_seconds <= 0:
        raise ConfigError("RetryPollIntervalSeconds: must be a positive number of seconds")
    if not config.reboot_command.strip():
        raise ConfigError("RebootCommand: must not be empty")
    return DaemonSettings(
        server_url=config.server_url,
        tenant_token=str(_typed("TenantToken", x["TenantToken"], str)).strip(),
        key_path=Path(key_path) if key_path else data_dir / "pyupdate-agent.pem",
        key_type=key_type,
        identity_script=identity,
        identity_dirs=_strlist("IdentityDirs", x["IdentityDirs"]),
        inventory_dirs=_strlist("InventoryDirs", x["InventoryDirs"]),
        update_poll=config.update_poll_interval_seconds,
        inventory_poll=config.inventory_poll_interval_seconds,
        retry_poll=config.retry_poll_interval_seconds,
        jitter=float(jitter),
        commit_deadline=_positive("CommitReportDeadlineSeconds", x["CommitReportDeadlineSeconds"]),
        reboot_command=config.reboot_command,
        reboot_wait=_positive("RebootWaitSeconds", x["RebootWaitSeconds"]),
        download_resumes=_positive("DownloadMaxResumes", x["DownloadMaxResumes"]),
        download_seconds=_positive("DownloadResumeSeconds", x["DownloadResumeSeconds"]),
        request_timeout=float(timeout),
        pid_file=Path(pid_file) if pid_file else data_dir / "pyupdate.pid",
    )
