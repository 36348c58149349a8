"""The agent's config: mender.conf-compatible JSON into one typed, frozen Config.

`Config`'s fields are the key table: each carries its `Key` (the JSON name,
Mender's spelling; its kind, i.e. type, limits and the one-line error; its
meaning), and its default is the field's default. Standalone commands read
`Config`; the daemon's settings (daemon/settings.py) are a view of the same
object. docs/agent.md's key reference is rendered from `KEYS` (a test keeps
them equal).

An existing mender.conf works unchanged: key names are matched
case-insensitively as Go's encoding/json does, and unknown keys are kept aside
in `Config.extra`, not refused (Mender's own behaviour, so a conf with keys we
do not use, such as `Servers` or `DBus`, still loads).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import keyvalue
from .config_schema import (
    BOOTLOADER,
    COMMAND,
    COUNT,
    DAEMON_ONLY,
    FILE,
    FLAG,
    JITTER,
    KEY_TYPE,
    MENDER,
    OURS,
    PATH,
    PATHS,
    SECONDS,
    SECONDS_OR_ZERO,
    TEXT,
    TIMEOUT,
    TOKEN,
    WINDOW,
    Key,
    Kind,
)
from .errors import ConfigError

DEFAULT_CONFIG = Path("/etc/pyupdate/pyupdate.conf")
DEFAULT_DATA = Path("/var/lib/pyupdate")


def _key(
    name: str, kind: Kind, default: object, origin: str, doc: str, under_data: str | None = None
) -> Any:
    return field(default=default, metadata={"key": Key(name, kind, doc, origin, under_data)})


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the agent reads from its config file: one field per key (see `KEYS`).

    `extra` holds the keys the table does not know; `source` names the file in errors.
    """

    # standalone: Mender's keys
    rootfs_part_a: str | None = _key(
        "RootfsPartA",
        PATH,
        None,
        MENDER,
        "slot A: block device (a file in host mode); its trailing digits are the partition number",
    )
    rootfs_part_b: str | None = _key("RootfsPartB", PATH, None, MENDER, "slot B, as RootfsPartA")
    artifact_verify_key: str | None = _key(
        "ArtifactVerifyKey",
        PATH,
        None,
        MENDER,
        "PEM public key; when any verify key is set, unsigned artifacts are refused",
    )
    artifact_verify_key_list: tuple[str, ...] = _key(
        "ArtifactVerifyKeys", PATHS, (), MENDER, "more PEM public keys (Mender 4)"
    )
    device_type_file: str | None = _key(
        "DeviceTypeFile", PATH, None, MENDER, "`device_type=<type>` file", "device_type"
    )
    state_script_timeout_seconds: int = _key(
        "StateScriptTimeoutSeconds", SECONDS, 3600, MENDER, "one state script run"
    )
    state_script_retry_timeout_seconds: int = _key(
        "StateScriptRetryTimeoutSeconds",
        SECONDS,
        1800,
        MENDER,
        "how long a script may keep answering retry-later (21)",
    )
    state_script_retry_interval_seconds: int = _key(
        "StateScriptRetryIntervalSeconds",
        SECONDS_OR_ZERO,
        60,
        MENDER,
        "wait between retry-later runs",
    )
    module_timeout_seconds: int = _key(
        "ModuleTimeoutSeconds", SECONDS, 14400, MENDER, "one update module call"
    )
    boot_utilities_set: str | None = _key(
        "BootUtilitiesSetActivePart", TEXT, None, MENDER, "command replacing `fw_setenv`"
    )
    boot_utilities_get: str | None = _key(
        "BootUtilitiesGetNextActivePart", TEXT, None, MENDER, "command replacing `fw_printenv`"
    )
    server_certificate: str | None = _key(
        "ServerCertificate", PATH, None, MENDER, "extra CA (PEM) for the server and `install URL`"
    )
    skip_verify: bool = _key("SkipVerify", FLAG, False, MENDER, "no TLS verification (logged)")
    # standalone: ours
    allow_downgrade: bool = _key(
        "AllowDowngrade",
        FLAG,
        False,
        OURS,
        "install an artifact whose `*.version` provides are older than the running ones",
    )
    bootloader: str = _key(
        "Bootloader",
        BOOTLOADER,
        "uboot",
        OURS,
        "`uboot` (fw_printenv/fw_setenv) or `grub` (grub-editenv)",
    )
    fw_env_config: str | None = _key(
        "FwEnvConfig", PATH, None, OURS, "`fw_printenv/fw_setenv -c`; unset: the tools' default"
    )
    grub_env_file: str = _key("GrubEnvFile", FILE, "/boot/grub/grubenv", OURS, "grubenv for `grub`")
    artifact_info_files: tuple[str, ...] = _key(
        "ArtifactInfoFiles",
        PATHS,
        ("/etc/pyupdate/artifact_info", "/etc/mender/artifact_info"),
        OURS,
        "current artifact while the store has none; first found",
    )
    scripts_dirs: tuple[str, ...] = _key(
        "ScriptsDirs",
        PATHS,
        ("/etc/pyupdate/scripts", "/etc/mender/scripts"),
        OURS,
        "rootfs state scripts",
    )
    modules_dirs: tuple[str, ...] = _key(
        "ModulesDirs",
        PATHS,
        ("/usr/share/pyupdate/modules/v3", "/usr/share/mender/modules/v3"),
        OURS,
        "update modules, first match by name",
    )
    # managed mode: Mender's keys
    server_url: str | None = _key(
        "ServerURL", TEXT, None, MENDER + DAEMON_ONLY, "the server; the daemon needs it"
    )
    tenant_token: str = _key(
        "TenantToken", TOKEN, "", MENDER + DAEMON_ONLY, "sent with the auth request"
    )
    auth_private_key: str | None = _key(
        "Security.AuthPrivateKey",
        PATH,
        None,
        MENDER + DAEMON_ONLY,
        "device key (Mender's `mender-agent.pem` works)",
        "pyupdate-agent.pem",
    )
    update_poll_interval_seconds: int = _key(
        "UpdatePollIntervalSeconds", SECONDS, 1800, MENDER + DAEMON_ONLY, "deployment check"
    )
    inventory_poll_interval_seconds: int = _key(
        "InventoryPollIntervalSeconds", SECONDS, 1800, MENDER + DAEMON_ONLY, "inventory upload"
    )
    retry_poll_interval_seconds: int = _key(
        "RetryPollIntervalSeconds",
        SECONDS,
        300,
        MENDER + DAEMON_ONLY,
        "longest backoff after an error",
    )
    # managed mode: ours
    reboot_command: str = _key(
        "RebootCommand", COMMAND, "reboot", OURS + DAEMON_ONLY, "run to reboot (split on spaces)"
    )
    reboot_wait_seconds: int = _key(
        "RebootWaitSeconds",
        SECONDS,
        600,
        OURS + DAEMON_ONLY,
        "alive this long after RebootCommand → failure",
    )
    commit_report_deadline_seconds: int = _key(
        "CommitReportDeadlineSeconds",
        SECONDS,
        1800,
        OURS + DAEMON_ONLY,
        "server unreachable after the reboot → rollback",
    )
    device_key_type: str = _key(
        "DeviceKeyType",
        KEY_TYPE,
        "rsa",
        OURS + DAEMON_ONLY,
        "a new key: `rsa` (3072), `ecdsa` (P-256), `ed25519`",
    )
    identity_script: str | None = _key(
        "IdentityScript",
        PATH,
        None,
        OURS + DAEMON_ONLY,
        "unset: the first in IdentityDirs, then Mender's",
    )
    identity_dirs: tuple[str, ...] = _key(
        "IdentityDirs",
        PATHS,
        ("/usr/share/pyupdate/identity",),
        OURS + DAEMON_ONLY,
        "identity scripts",
    )
    inventory_dirs: tuple[str, ...] = _key(
        "InventoryDirs",
        PATHS,
        ("/usr/share/pyupdate/inventory", "/usr/share/mender/inventory"),
        OURS + DAEMON_ONLY,
        "inventory scripts: all run",
    )
    poll_jitter: float = _key(
        "PollJitter", JITTER, 0.1, OURS + DAEMON_ONLY, "random spread of each poll wait"
    )
    download_max_resumes: int = _key(
        "DownloadMaxResumes", COUNT, 10, OURS, "resumes of one download (daemon and `install URL`)"
    )
    download_resume_seconds: int = _key(
        "DownloadResumeSeconds",
        SECONDS,
        600,
        OURS,
        "time for the resumes of one download",
    )
    request_timeout_seconds: float = _key(
        "RequestTimeoutSeconds",
        TIMEOUT,
        30.0,
        OURS,
        "per read; twice this per API request",
    )
    install_window: str | None = _key(
        "InstallWindow",
        WINDOW,
        None,
        OURS + DAEMON_ONLY,
        "install and reboot only then; downloads at once (a deployment's window wins)",
    )
    pid_file: str | None = _key(
        "PidFile",
        PATH,
        None,
        OURS + DAEMON_ONLY,
        "for `check-update` / `send-inventory`",
        "pyupdate.pid",
    )

    extra: dict[str, object] = field(default_factory=dict, compare=False)
    source: str = field(default="config", compare=False)

    def __post_init__(self) -> None:
        for key in KEYS:
            try:
                value = key.kind.convert(getattr(self, key.attr))
            except ValueError:
                raise ConfigError(f"{key.name}: {key.message}") from None
            object.__setattr__(self, key.attr, value)

    @property
    def artifact_verify_keys(self) -> tuple[str, ...]:
        """ArtifactVerifyKey, then ArtifactVerifyKeys; when any is set, unsigned artifacts are refused."""
        first = (self.artifact_verify_key,) if self.artifact_verify_key else ()
        return first + self.artifact_verify_key_list


KEYS: tuple[Key, ...] = tuple(
    replace(f.metadata["key"], attr=f.name, default=f.default)
    for f in fields(Config)
    if "key" in f.metadata
)
_BY_LOWER = {key.name.lower(): key for key in KEYS}
_BY_ATTR = {key.attr: key for key in KEYS}
_GROUPS = {
    key.name.split(".")[0].lower(): key.name.split(".")[0] for key in KEYS if "." in key.name
}


def parse_config(text: str, source: str = "config") -> Config:
    """Parse mender.conf-style JSON; every key is checked here, once; errors name the file and key."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a JSON object")
    values: dict[str, object] = {}
    extra: dict[str, object] = {}
    for name, value in _members(raw, source):
        key = _BY_LOWER.get(name.lower())
        if key is None:
            extra[name] = value
        else:
            values[key.attr] = value
    try:
        return Config(**values, extra=extra, source=source)  # type: ignore[arg-type]
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def _members(raw: dict[str, object], source: str) -> list[tuple[str, object]]:
    """Top-level members, and `Group.Member` for the objects the table looks into."""
    found: list[tuple[str, object]] = []
    for name, value in raw.items():
        group = _GROUPS.get(name.lower())
        if group is None:
            found.append((name, value))
        elif value is not None:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {group}: must be an object")
            found += [(f"{group}.{member}", v) for member, v in value.items()]
    return found


def load_config(path: Path | None) -> Config:
    """Load `path`; a missing default config means all defaults (like mender)."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return Config(source=str(DEFAULT_CONFIG))
        path = DEFAULT_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    return parse_config(text, str(path))


def data_file(config: Config, attr: str, data_dir: Path) -> Path:
    """A path key's value, or its default file in the data dir (DeviceTypeFile, PidFile...)."""
    value = getattr(config, attr)
    under_data = _BY_ATTR[attr].under_data
    assert under_data is not None, attr
    return Path(value) if value else data_dir / under_data


def device_type_path(config: Config, data_dir: Path) -> Path:
    return data_file(config, "device_type_file", data_dir)


def read_device_type(config: Config, data_dir: Path) -> str | None:
    """`device_type=...` from the DeviceTypeFile; None when the file is absent.

    Same rules as mender 3.4: KEY=VALUE lines (keyvalue.py); a line that is not
    KEY=VALUE is an error, and so is the key twice.
    """
    path = device_type_path(config, data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read device type ({err.strerror})") from None
    lines = keyvalue.parse(text)
    if lines.bad:
        raise ConfigError(f"{path}: line {lines.bad[0]!r} is not KEY=VALUE")
    found = [value for key, value in lines.pairs if key == "device_type"]
    if len(found) > 1:
        raise ConfigError(f"{path}: device_type is set twice")
    if not found:
        raise ConfigError(f"{path}: no device_type= line")
    return found[0]
