"""The agent's config: mender.conf-compatible JSON into one typed, frozen Config.

An existing mender.conf works unchanged: key names are Mender's, matched
case-insensitively as Go's encoding/json does, and unknown keys are ignored
(Mender's own behaviour, so a conf with server-only keys still loads). Our own
keys (Bootloader, FwEnvConfig, GrubEnvFile, ...) are listed in docs/agent.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ConfigError

DEFAULT_CONFIG = Path("/etc/pyupdate/pyupdate.conf")
DEFAULT_DATA = Path("/var/lib/pyupdate")


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the agent reads from its config file.

    Args:
        rootfs_part_a, rootfs_part_b: the A/B slots (block devices, or files in host mode);
            their trailing digits are the partition numbers written to `mender_boot_part`.
        artifact_verify_keys: PEM public keys; when any is set, unsigned artifacts are refused.
        device_type_file: `device_type=...` file, default `<data>/device_type`.
        bootloader: `uboot` (fw_printenv/fw_setenv) or `grub` (grub-editenv).
        fw_env_config: passed as `fw_printenv -c`; None uses the tools' default.
        boot_utilities_set / boot_utilities_get: commands replacing fw_setenv / fw_printenv.
        grub_env_file: the grubenv file for `bootloader=grub`.
        artifact_info_files, scripts_dirs, modules_dirs: search paths, first hit wins
            (artifact_info) or all are used (scripts, modules: first match by name).
    """

    rootfs_part_a: str | None = None
    rootfs_part_b: str | None = None
    artifact_verify_keys: tuple[str, ...] = ()
    device_type_file: str | None = None
    server_url: str | None = None
    server_certificate: str | None = None
    skip_verify: bool = False
    update_poll_interval_seconds: int = 1800
    inventory_poll_interval_seconds: int = 1800
    retry_poll_interval_seconds: int = 300
    state_script_timeout_seconds: int = 3600
    state_script_retry_timeout_seconds: int = 1800
    state_script_retry_interval_seconds: int = 60
    module_timeout_seconds: int = 14400
    boot_utilities_set: str | None = None
    boot_utilities_get: str | None = None
    bootloader: str = "uboot"
    fw_env_config: str | None = None
    grub_env_file: str = "/boot/grub/grubenv"
    reboot_command: str = "reboot"
    artifact_info_files: tuple[str, ...] = (
        "/etc/pyupdate/artifact_info",
        "/etc/mender/artifact_info",
    )
    scripts_dirs: tuple[str, ...] = ("/etc/pyupdate/scripts", "/etc/mender/scripts")
    modules_dirs: tuple[str, ...] = (
        "/usr/share/pyupdate/modules/v3",
        "/usr/share/mender/modules/v3",
    )
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.bootloader not in ("uboot", "grub"):
            raise ConfigError(f"Bootloader: {self.bootloader!r} is not one of uboot, grub")
        for name in (
            "state_script_timeout_seconds",
            "state_script_retry_timeout_seconds",
            "module_timeout_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_KEY_OF[name]}: must be a positive number of seconds")
        if self.state_script_retry_interval_seconds < 0:
            raise ConfigError("StateScriptRetryIntervalSeconds: must not be negative")


# JSON key (Mender's spelling) -> (field, kind). Kinds: str, int, bool, strlist.
_KEYS: dict[str, tuple[str, str]] = {
    "RootfsPartA": ("rootfs_part_a", "str"),
    "RootfsPartB": ("rootfs_part_b", "str"),
    "ArtifactVerifyKey": ("artifact_verify_keys", "key"),
    "ArtifactVerifyKeys": ("artifact_verify_keys", "strlist"),
    "DeviceTypeFile": ("device_type_file", "str"),
    "ServerURL": ("server_url", "str"),
    "ServerCertificate": ("server_certificate", "str"),
    "SkipVerify": ("skip_verify", "bool"),
    "UpdatePollIntervalSeconds": ("update_poll_interval_seconds", "int"),
    "InventoryPollIntervalSeconds": ("inventory_poll_interval_seconds", "int"),
    "RetryPollIntervalSeconds": ("retry_poll_interval_seconds", "int"),
    "StateScriptTimeoutSeconds": ("state_script_timeout_seconds", "int"),
    "StateScriptRetryTimeoutSeconds": ("state_script_retry_timeout_seconds", "int"),
    "StateScriptRetryIntervalSeconds": ("state_script_retry_interval_seconds", "int"),
    "ModuleTimeoutSeconds": ("module_timeout_seconds", "int"),
    "BootUtilitiesSetActivePart": ("boot_utilities_set", "str"),
    "BootUtilitiesGetNextActivePart": ("boot_utilities_get", "str"),
    "Bootloader": ("bootloader", "str"),
    "FwEnvConfig": ("fw_env_config", "str"),
    "GrubEnvFile": ("grub_env_file", "str"),
    "RebootCommand": ("reboot_command", "str"),
    "ArtifactInfoFiles": ("artifact_info_files", "strlist"),
    "ScriptsDirs": ("scripts_dirs", "strlist"),
    "ModulesDirs": ("modules_dirs", "strlist"),
}
_BY_LOWER = {key.lower(): key for key in _KEYS}
_KEY_OF = {fieldname: key for key, (fieldname, _) in _KEYS.items()}
_FIELDS = {f.name for f in fields(Config)}


def parse_config(text: str, source: str = "config") -> Config:
    """Parse mender.conf-style JSON; errors name the file and the key."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a JSON object")
    values: dict[str, object] = {}
    extra: dict[str, object] = {}
    keys: list[str] = []
    for name, value in raw.items():
        key = _BY_LOWER.get(str(name).lower())
        if key is None:
            extra[name] = value
            continue
        fieldname, kind = _KEYS[key]
        converted = _convert(source, key, kind, value)
        if fieldname == "artifact_verify_keys" and fieldname in values:
            converted = tuple(values[fieldname]) + tuple(converted)  # type: ignore[arg-type]
        values[fieldname] = converted
        keys.append(key)
    assert set(values) <= _FIELDS
    try:
        return Config(**values, extra=extra)  # type: ignore[arg-type]
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def load_config(path: Path | None) -> Config:
    """Load `path`; a missing default config means all defaults (like mender)."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return Config()
        path = DEFAULT_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    return parse_config(text, str(path))


def _convert(source: str, key: str, kind: str, value: object) -> object:
    where = f"{source}: {key}"
    if kind == "str":
        if value is None or value == "":
            return None if key not in ("Bootloader", "GrubEnvFile", "RebootCommand") else value
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return value
    if kind == "key":
        if value in (None, ""):
            return ()
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a path string")
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: must be a list of strings")
    return tuple(value)


def device_type_path(config: Config, data_dir: Path) -> Path:
    return Path(config.device_type_file) if config.device_type_file else data_dir / "device_type"


def read_device_type(config: Config, data_dir: Path) -> str | None:
    """`device_type=...` from the DeviceTypeFile; None when the file is absent.

    Same rules as mender 3.4: KEY=VALUE lines, `#` comments, values trimmed,
    the key twice is an error.
    """
    path = device_type_path(config, data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read device type ({err.strerror})") from None
    found: str | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}: line {line!r} is not KEY=VALUE")
        if name.strip() == "device_type":
            if found is not None:
                raise ConfigError(f"{path}: device_type is set twice")
            found = value.strip()
    if found is None:
        raise ConfigError(f"{path}: no device_type= line")
    return found
