"""The daemon's settings: a view of `Config` under the names the daemon uses.

Every key, daemon-only ones included, is parsed and checked once, in config.py
(its key table). What is left here: ServerURL must be set, and the key and pid
file default to files in the data dir. Defaults and meaning: docs/agent.md,
"Config".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config, data_file
from ..errors import ConfigError


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """Args (each the Config field of the same key):
    server_url: ServerURL.
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


def daemon_settings(config: Config, data_dir: Path) -> DaemonSettings:
    """The daemon's view of `config`; ConfigError when ServerURL is missing."""
    if not config.server_url:
        raise ConfigError(f"{config.source}: ServerURL: must be set to run the daemon")
    return DaemonSettings(
        server_url=config.server_url,
        tenant_token=config.tenant_token,
        key_path=data_file(config, "auth_private_key", data_dir),
        key_type=config.device_key_type,
        identity_script=config.identity_script,
        identity_dirs=config.identity_dirs,
        inventory_dirs=config.inventory_dirs,
        update_poll=config.update_poll_interval_seconds,
        inventory_poll=config.inventory_poll_interval_seconds,
        retry_poll=config.retry_poll_interval_seconds,
        jitter=config.poll_jitter,
        commit_deadline=config.commit_report_deadline_seconds,
        reboot_command=config.reboot_command,
        reboot_wait=config.reboot_wait_seconds,
        download_resumes=config.download_max_resumes,
        download_seconds=config.download_resume_seconds,
        request_timeout=config.request_timeout_seconds,
        pid_file=data_file(config, "pid_file", data_dir),
    )
