"""Board configs: one declarative file per board, checked against board.schema.json.

The check is image/schema.py, which knows exactly the keywords the schema uses.

Defaults live in the schema (`"default"` keys), not here, so the schema is
the one place a porter reads. A name without a path separator or suffix
resolves to a board shipped in `boards/`.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import BoardConfigError
from .schema import schema_errors

SCHEMA_NAME = "board.schema.json"
BOOT_PART, SLOT_A_PART, SLOT_B_PART, DATA_PART = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class QemuConfig:
    binary: str
    machine: str
    cpu: str | None
    memory_mib: int
    disk_interface: str


@dataclass(frozen=True, slots=True)
class UBootConfig:
    binary: str
    mkimage_arch: str
    boot_command: str
    interface: str
    device: int
    kernel_addr_r: str | None
    ramdisk_addr_r: str
    fdt: str | None
    scratch_addr: str
    bootlimit: int


@dataclass(frozen=True, slots=True)
class PartitionConfig:
    align_mib: int
    boot_mib: int
    rootfs_mib: int
    data_mib: int


@dataclass(frozen=True, slots=True)
class EnvConfig:
    size: int
    files: tuple[str, str]
    offsets: tuple[int, int]
    mount_point: str
    persist: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KernelConfig:
    image: str
    initrd: str | None
    bootargs: str


@dataclass(frozen=True, slots=True)
class Board:
    """A validated board config. Partition numbers are fixed: boot 1, A 2, B 3, data 4."""

    name: str
    arch: str
    device_type: str
    qemu: QemuConfig
    uboot: UBootConfig
    linux_device: str
    partition_separator: str
    partitions: PartitionConfig
    env: EnvConfig
    kernel: KernelConfig
    data_mount_point: str
    data_label: str
    source: str

    def linux_partition(self, number: int) -> str:
        return f"{self.linux_device}{self.partition_separator}{number}"


def shipped_boards() -> list[str]:
    folder = resources.files(__package__).joinpath("boards")
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(".json"))


def resolve(name_or_path: str) -> Path:
    """A shipped board name (`qemu-x86_64`) or a path to a .json/.toml file."""
    if "/" not in name_or_path and not name_or_path.endswith((".json", ".toml")):
        shipped = resources.files(__package__).joinpath("boards", f"{name_or_path}.json")
        if not shipped.is_file():
            known = ", ".join(shipped_boards())
            raise BoardConfigError(
                f"board {name_or_path!r}: no such shipped board (known: {known})"
            )
        return Path(str(shipped))
    return Path(name_or_path)


def load_board(name_or_path: str) -> Board:
    path = resolve(name_or_path)
    raw = _read(path)
    validate(raw, str(path))
    return _build(_with_defaults(raw, _schema()), str(path))


def validate(raw: Any, source: str) -> None:
    """Raise BoardConfigError naming the first bad field (dotted path)."""
    errors = schema_errors(raw, _schema())
    if not errors:
        return
    err = errors[0]
    field = ".".join(str(p) for p in err.path)
    if err.keyword == "required":
        field = f"{field}.{err.missing}" if field else err.missing
        raise BoardConfigError(f"{source}: {field}: required field is missing")
    raise BoardConfigError(f"{source}: {field or '(top level)'}: {_short(err.message)}")


def _short(message: str) -> str:
    return message if len(message) <= 160 else message[:157] + "..."


def _read(path: Path) -> Any:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise BoardConfigError(f"{path}: cannot read board config: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text.decode())
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = path.suffix.lstrip(".") or "json"
        raise BoardConfigError(f"{path}: not valid {kind}: {exc}") from exc


def _schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(SCHEMA_NAME).read_text())


def _with_defaults(raw: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Fill in the schema's `default` values, recursively for object members."""
    out = dict(raw)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if sub.get("type") == "object":
            out[key] = _with_defaults(out.get(key, {}), sub)
    return out


def _build(c: dict[str, Any], source: str) -> Board:
    env = c["env"]
    return Board(
        name=c["name"],
        arch=c["arch"],
        device_type=c["device_type"],
        qemu=QemuConfig(**c["qemu"]),
        uboot=UBootConfig(**c["uboot"]),
        linux_device=c["storage"]["linux_device"],
        partition_separator=c["storage"]["partition_separator"],
        partitions=PartitionConfig(**c["partitions"]),
        env=EnvConfig(
            size=int(env["size"], 16),
            files=(env["files"][0], env["files"][1]),
            offsets=(int(env["offsets"][0], 16), int(env["offsets"][1], 16)),
            mount_point=env["mount_point"].rstrip("/") or "/",
            persist=tuple(env["persist"]),
        ),
        kernel=KernelConfig(**c["kernel"]),
        data_mount_point=c["data"]["mount_point"],
        data_label=c["data"]["label"],
        source=source,
    )
