"""header-info, type-info and meta-data: models and validation (docs/artifact-format.md#header)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import FormatError
from .gojson import go_json, loads_object

DependValue = str | list[str]


@dataclass(frozen=True, slots=True)
class HeaderInfo:
    """The artifact-wide header: payload types, name/group, device types and depends."""

    payload_types: tuple[str | None, ...]
    artifact_name: str
    artifact_group: str | None = None
    device_types: tuple[str, ...] = ()
    depends_names: tuple[str, ...] = ()
    depends_groups: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        provides: dict[str, str] = {"artifact_name": self.artifact_name}
        if self.artifact_group:
            provides["artifact_group"] = self.artifact_group
        depends: dict[str, list[str]] = {}
        if self.depends_names:
            depends["artifact_name"] = list(self.depends_names)
        depends["device_type"] = list(self.device_types)
        if self.depends_groups:
            depends["artifact_group"] = list(self.depends_groups)
        doc = {
            "payloads": [{"type": t} for t in self.payload_types],
            "artifact_provides": provides,
            "artifact_depends": depends,
        }
        return go_json(doc)

    def as_dict(self) -> dict:
        return loads_object(self.to_json(), "header-info")


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """Per-payload header: type and the payload's provides, depends, clears."""

    type: str | None
    provides: dict[str, str] = field(default_factory=dict)
    depends: dict[str, DependValue] = field(default_factory=dict)
    clears_provides: tuple[str, ...] | None = None

    def to_json(self) -> bytes:
        doc: dict[str, object] = {"type": self.type}
        # Go marshals maps with sorted keys; match it byte for byte.
        if self.depends:
            doc["artifact_depends"] = dict(sorted(self.depends.items()))
        if self.provides:
            doc["artifact_provides"] = dict(sorted(self.provides.items()))
        if self.clears_provides:
            doc["clears_artifact_provides"] = list(self.clears_provides)
        return go_json(doc)

    def as_dict(self) -> dict:
        return loads_object(self.to_json(), "type-info")


def _strings(value: object, where: str, *, required: bool = False) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormatError(f"{where}: expected a list of strings")
    if required and not value:
        raise FormatError(f"{where}: must not be empty")
    return tuple(value)


def _only_keys(doc: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r}")


def parse_header_info(data: bytes) -> HeaderInfo:
    where = "header-info"
    doc = loads_object(data, where)
    _only_keys(doc, {"payloads", "artifact_provides", "artifact_depends"}, where)
    payloads = doc.get("payloads")
    if not isinstance(payloads, list) or not payloads:
        raise FormatError(f"{where}: payloads must be a non-empty list")
    types: list[str | None] = []
    for number, entry in enumerate(payloads):
        if not isinstance(entry, dict) or set(entry) != {"type"}:
            raise FormatError(f"{where}: payloads[{number}] must be an object with only 'type'")
        kind = entry["type"]
        if kind is not None and (not isinstance(kind, str) or not kind):
            raise FormatError(
                f"{where}: payloads[{number}].type must be a non-empty string or null"
            )
        types.append(kind)
    provides = doc.get("artifact_provides")
    if not isinstance(provides, dict):
        raise FormatError(f"{where}: artifact_provides is missing")
    _only_keys(provides, {"artifact_name", "artifact_group"}, f"{where}: artifact_provides")
    name = provides.get("artifact_name")
    if not isinstance(name, str) or not name:
        raise FormatError(f"{where}: artifact_provides.artifact_name is missing or empty")
    group = provides.get("artifact_group")
    if group is not None and not isinstance(group, str):
        raise FormatError(f"{where}: artifact_provides.artifact_group must be a string")
    depends = doc.get("artifact_depends")
    if not isinstance(depends, dict):
        raise FormatError(f"{where}: artifact_depends is missing")
    _only_keys(
        depends, {"artifact_name", "device_type", "artifact_group"}, f"{where}: artifact_depends"
    )
    if "device_type" not in depends:
        raise FormatError(f"{where}: artifact_depends.device_type is required")
    return HeaderInfo(
        payload_types=tuple(types),
        artifact_name=name,
        artifact_group=group or None,
        device_types=_strings(depends["device_type"], f"{where}: device_type", required=True),
        depends_names=_strings(
            depends.get("artifact_name"), f"{where}: artifact_depends.artifact_name"
        ),
        depends_groups=_strings(
            depends.get("artifact_group"), f"{where}: artifact_depends.artifact_group"
        ),
    )


def parse_type_info(data: bytes, where: str) -> TypeInfo:
    doc = loads_object(data, where)
    _only_keys(
        doc, {"type", "artifact_provides", "artifact_depends", "clears_artifact_provides"}, where
    )
    kind = doc.get("type")
    if kind is not None and not isinstance(kind, str):
        raise FormatError(f"{where}: type must be a string or null")
    provides = doc.get("artifact_provides") or {}
    if not isinstance(provides, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in provides.items()
    ):
        raise FormatError(f"{where}: artifact_provides must map strings to strings")
    depends = doc.get("artifact_depends") or {}
    if not isinstance(depends, dict):
        raise FormatError(f"{where}: artifact_depends must be an object")
    for key, value in depends.items():
        if not isinstance(value, str):
            _strings(value, f"{where}: artifact_depends.{key}")
    clears = doc.get("clears_artifact_provides")
    return TypeInfo(
        type=kind,
        provides=dict(provides),
        depends=dict(depends),
        clears_provides=None
        if clears is None
        else _strings(clears, f"{where}: clears_artifact_provides"),
    )


def parse_meta_data(data: bytes, where: str) -> dict | None:
    """Empty file -> None (rootfs-image writes an empty meta-data)."""
    if not data.strip():
        return None
    return loads_object(data, where)
