"""What the reader hands its callers: the parsed header and the payload sink protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .format.header import HeaderInfo, TypeInfo


@dataclass(slots=True)
class PayloadFile:
    name: str
    sha256: str
    size: int = -1  # known once the data member was read


@dataclass(frozen=True, slots=True)
class Payload:
    index: int
    type: str | None
    type_info: TypeInfo
    meta_data: dict | None
    files: list[PayloadFile] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ArtifactHeader:
    format_version: int
    header_info: HeaderInfo
    payloads: tuple[Payload, ...]
    scripts: dict[str, bytes]
    manifest: dict[str, str]
    signed: bool
    signature_verified: bool
    compression: str  # id of the header's compression (none, gzip, lzma, zstd)

    @property
    def artifact_name(self) -> str:
        return self.header_info.artifact_name

    @property
    def artifact_group(self) -> str | None:
        return self.header_info.artifact_group

    @property
    def device_types(self) -> tuple[str, ...]:
        return self.header_info.device_types

    @property
    def depends(self) -> dict[str, str | list[str]]:
        merged: dict[str, str | list[str]] = {}
        if self.header_info.depends_names:
            merged["artifact_name"] = list(self.header_info.depends_names)
        if self.header_info.depends_groups:
            merged["artifact_group"] = list(self.header_info.depends_groups)
        for payload in self.payloads:
            merged.update(payload.type_info.depends)
        return merged

    @property
    def type_provides(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for payload in self.payloads:
            merged.update(payload.type_info.provides)
        return merged

    @property
    def clears_provides(self) -> list[str] | None:
        lists = [p.type_info.clears_provides for p in self.payloads]
        if all(c is None for c in lists):
            return None
        return [pattern for c in lists if c for pattern in c]


class PayloadWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    def finish(self) -> None:
        """Every byte arrived and the sha256 matched the manifest."""
        ...

    def abort(self) -> None:
        """The file is bad or the stream broke: drop what was written."""
        ...


class PayloadSink(Protocol):
    def open_file(self, payload: Payload, name: str, size: int) -> PayloadWriter: ...
