"""Streaming reader: member order, hashes and signature; payloads go to a sink.

One reader serves the CLI, the server and the agent. It never seeks, so it
reads from a file or an HTTP body alike, and it verifies `manifest.sig`
before the first payload byte is read. Rules: docs/artifact-format.md.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from . import compression
from .errors import ChecksumError, FormatError, InputError, SignatureError
from .format.header import HeaderInfo, TypeInfo, parse_header_info, parse_meta_data, parse_type_info
from .format.manifest import parse_manifest
from .format.version import parse_version
from .model import ArtifactHeader, Payload, PayloadFile, PayloadSink, PayloadWriter
from .prefetch import CHUNK, Prefetcher
from .provides import check_conflicts
from .state_scripts import NAME_RE
from .tarsafe import ByteSource, Member, TarReader
from .verify import Verifier, verify_any

# Caps checked before anything is allocated (docs/artifact-format.md#limits).
MAX_VERSION = 4096
MAX_SIGNATURE = 8192
MAX_HEADER_COMPRESSED = 16 << 20
MAX_HEADER = 64 << 20
MAX_HEADER_MEMBER = 8 << 20

_DATA_MEMBER = re.compile(r"^data/([0-9]{4})\.tar(\.[a-z]+)?$")
_HEADERS_FILE = re.compile(r"^headers/([0-9]{4})/(type-info|meta-data)$")
_SCRIPTS_DIR = "scripts/"

Progress = Callable[[int], None]


class _Counting:
    """Counts bytes taken from the underlying stream, for progress bars."""

    def __init__(self, stream: BinaryIO, progress: Progress | None) -> None:
        self._stream = stream
        self._progress = progress
        self.count = 0

    def read(self, size: int) -> bytes:
        try:
            data = self._stream.read(size)
        except OSError as err:
            raise InputError(f"cannot read artifact ({err})") from None
        self.count += len(data)
        if self._progress is not None and data:
            self._progress(len(data))
        return data


class ArtifactReader:
    """Reads one artifact from a stream: `read_header()`, then `read_payloads(sink)`."""

    def __init__(
        self,
        stream: BinaryIO,
        *,
        verify_keys: Sequence[Verifier] = (),
        require_signature: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self._src = _Counting(stream, progress)
        self._outer = TarReader(self._src, "artifact")
        self._verifiers = list(verify_keys)
        self._require_signature = require_signature
        self._header: ArtifactHeader | None = None

    # -- header ---------------------------------------------------------
    def _next(self, expected: str) -> Member:
        member = self._outer.next_member()
        if member is None:
            raise FormatError(f"artifact: ends before {expected} (truncated or empty file?)")
        return member

    def read_header(self) -> ArtifactHeader:
        first = self._outer.next_member()
        if first is None:
            raise FormatError("artifact: empty file, not a Mender artifact")
        if first.name != "version":
            raise FormatError(f"artifact: first member is {first.name!r}, expected 'version'")
        version_bytes = self._outer.read_member(first, MAX_VERSION)
        format_version = parse_version(version_bytes)

        member = self._next("manifest")
        if member.name != "manifest":
            raise FormatError(
                f"artifact: expected 'manifest' after 'version', found {member.name!r}"
            )
        manifest_bytes = self._outer.read_member(member, 1 << 20)
        manifest = parse_manifest(manifest_bytes)

        member = self._next("header")
        signed = verified = False
        if member.name == "manifest.sig":
            signed = True
            signature = self._outer.read_member(member, MAX_SIGNATURE)
            if self._verifiers:
                verify_any(self._verifiers, manifest_bytes, signature)
                verified = True
            member = self._next("header")
        elif self._verifiers or self._require_signature or self._require_signature:
            raise SignatureError("artifact is not signed, but a signature is required")
        if self._require_signature and not verified:
            raise SignatureError("artifact signature cannot be checked: no verification key given")

        if member.name == "manifest-augment" or member.name.startswith("header-augment"):
            raise FormatError("artifact: augmented (delta) artifacts are not supported")
        if not member.name.startswith("header.tar"):
            raise FormatError(
                f"artifact: expected 'header.tar[{compression.suffixes()}]', found {member.name!r}"
            )
        kind = compression.by_member(member.name, "header.tar")
        blob = self._outer.read_member(member, MAX_HEADER_COMPRESSED)
        _check_hash(manifest, member.name, hashlib.sha256(blob).hexdigest())
        _check_hash(manifest, "version", hashlib.sha256(version_bytes).hexdigest())
        info, payloads, scripts = _parse_header_tar(blob, kind, member.name, manifest)
        for path in manifest:
            if path not in ("version", member.name) and not path.startswith("data/"):
                raise FormatError(f"manifest: unexpected entry {path}")
        self._header = ArtifactHeader(
            format_version=format_version,
            header_info=info,
            payloads=tuple(payloads),
            scripts=scripts,
            manifest=manifest,
            signed=signed,
            signature_verified=verified,
            compression=kind.id,
        )
        check_conflicts(self._header)
        return self._header

    # -- payloads -------------------------------------------------------
    def read_payloads(self, sink: PayloadSink | None = None) -> ArtifactHeader:
        header = self._header or self.read_header()
        seen_index = -1
        while True:
            member = self._outer.next_member()
            if member is None:
                break
            match = _DATA_MEMBER.match(member.name)
            if match is None:
                raise FormatError(f"artifact: unexpected member {member.name!r} after the header")
            index = int(match.group(1))
            if index <= seen_index or index >= len(header.payloads):
                raise FormatError(f"artifact: {member.name} is out of order or has no header")
            seen_index = index
            kind = compression.by_member(member.name, f"data/{index:04d}.tar")
            self._read_data_member(header.payloads[index], member.name, kind, sink)
        self._outer.finish()
        for payload in header.payloads:
            for file in payload.files:
                if file.size < 0:
                    raise FormatError(
                        f"artifact: data/{payload.index:04d}/{file.name} is in the manifest "
                        "but not in the artifact (truncated?)"
                    )
        return header

    def _read_data_member(
        self,
        payload: Payload,
        where: str,
        kind: compression.Compression,
        sink: PayloadSink | None,
    ) -> None:
        expected = {f.name: f for f in payload.files}
        source = Prefetcher(kind.open_reader(self._outer, where))
        try:
            inner = TarReader(source, where)
            while (member := inner.next_member()) is not None:
                file = expected.get(member.name)
                if file is None or "/" in member.name:
                    raise FormatError(f"{where}: {member.name!r} has no manifest entry")
                if file.size >= 0:
                    raise FormatError(f"{where}: duplicate payload file {member.name!r}")
                writer = sink.open_file(payload, member.name, member.size) if sink else None
                try:
                    digest = _stream_file(inner, member, writer)
                    if digest != file.sha256:
                        raise ChecksumError(
                            f"{where}: {member.name} does not match its manifest checksum"
                        )
                except BaseException:
                    if writer is not None:
                        writer.abort()
                    raise
                file.size = member.size
                if writer is not None:
                    writer.finish()
            # drain the end-of-archive blocks so the outer member is fully read
            while source.read(CHUNK):
                pass
        finally:
            source.close()


def _stream_file(inner: TarReader, member: Member, writer: PayloadWriter | None) -> str:
    digest = hashlib.sha256()
    left = member.size
    while left:
        chunk = inner.read(min(left, CHUNK))
        digest.update(chunk)
        if writer is not None:
            writer.write(chunk)
        left -= len(chunk)
    return digest.hexdigest()


def _check_hash(manifest: dict[str, str], path: str, digest: str) -> None:
    expected = manifest.get(path)
    if expected is None:
        raise FormatError(f"manifest: no checksum for {path}")
    if expected != digest:
        raise ChecksumError(f"{path}: checksum does not match the manifest")


def _parse_header_tar(
    blob: bytes, kind: compression.Compression, where: str, manifest: dict[str, str]
) -> tuple[HeaderInfo, list[Payload], dict[str, bytes]]:
    data = _decompress_header(blob, kind, where)
    inner = TarReader(io.BytesIO(data), where, skip_dirs=True)
    first = inner.next_member()
    if first is None or first.name != "header-info":
        raise FormatError(f"{where}: first member must be 'header-info'")
    info = parse_header_info(inner.read_member(first, MAX_HEADER_MEMBER))
    scripts: dict[str, bytes] = {}
    type_infos: dict[int, TypeInfo] = {}
    meta: dict[int, dict | None] = {}
    while (member := inner.next_member()) is not None:
        body = inner.read_member(member, MAX_HEADER_MEMBER)
        script = member.name.removeprefix(_SCRIPTS_DIR)
        if script != member.name and NAME_RE.match(script):
            if type_infos:
                raise FormatError(f"{where}: script {member.name} after the payload headers")
            if script in scripts:  # one would silently replace the other
                raise FormatError(f"{where}: duplicate state script {member.name}")
            scripts[script] = body
            continue
        match = _HEADERS_FILE.match(member.name)
        if match is None:
            raise FormatError(f"{where}: unexpected member {member.name!r}")
        index, kind = int(match.group(1)), match.group(2)
        if index >= len(info.payload_types):
            raise FormatError(f"{where}: {member.name} has no payload in header-info")
        if kind == "type-info":
            if index in type_infos or index != len(type_infos):
                raise FormatError(f"{where}: {member.name} is duplicate or out of order")
            type_infos[index] = parse_type_info(body, member.name)
        else:
            if index not in type_infos or index in meta:
                raise FormatError(f"{where}: {member.name} is duplicate or before its type-info")
            meta[index] = parse_meta_data(body, member.name)
    if len(type_infos) != len(info.payload_types):
        raise FormatError(f"{where}: a payload in header-info has no type-info")
    payloads = []
    for index, kind in enumerate(info.payload_types):
        prefix = f"data/{index:04d}/"
        files = [
            PayloadFile(name=path[len(prefix) :], sha256=digest)
            for path, digest in manifest.items()
            if path.startswith(prefix)
        ]
        payloads.append(Payload(index, kind, type_infos[index], meta.get(index), files))
    for path in manifest:
        if path.startswith("data/") and int(path[5:9]) >= len(payloads):
            raise FormatError(f"manifest: {path} belongs to no payload")
    return info, payloads, scripts


def _decompress_header(blob: bytes, kind: compression.Compression, where: str) -> bytes:
    reader = kind.open_reader(io.BytesIO(blob), where)
    parts, total = [], 0
    while chunk := reader.read(1 << 20):
        total += len(chunk)
        if total > MAX_HEADER:
            raise FormatError(f"{where}: decompresses to more than {MAX_HEADER} bytes")
        parts.append(chunk)
    return b"".join(parts)


def read_artifact(
    source: str | Path | BinaryIO,
    *,
    verify_keys: Sequence[Verifier] = (),
    require_signature: bool = False,
    sink: PayloadSink | None = None,
    progress: Progress | None = None,
) -> ArtifactHeader:
    """Read and check a whole artifact; payload files go to `sink` (None: validate only)."""
    if isinstance(source, str | Path):
        try:
            stream: BinaryIO = open(source, "rb", buffering=0)  # noqa: SIM115
        except OSError as err:
            raise InputError(f"{source}: {err.strerror}") from None
        with stream:
            return read_artifact(
                stream,
                verify_keys=verify_keys,
                require_signature=require_signature,
                sink=sink,
                progress=progress,
            )
    reader = ArtifactReader(
        source, verify_keys=verify_keys, require_signature=require_signature, progress=progress
    )
    reader.read_header()
    return reader.read_payloads(sink)


__all__ = ["ArtifactReader", "ByteSource", "read_artifact"]
