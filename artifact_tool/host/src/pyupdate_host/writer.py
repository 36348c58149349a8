"""Streaming writer: version, manifest, signature, header, then data, in one pass.

The manifest and the header come first in the file but hold the payload's
sha256, known only after the payload was read. mender-artifact reads the
input three times and writes the payload twice to get there. We read the
input once: the data member is written first, behind a reserved room at the
start of the file; then version, manifest, signature and header fill that
room, and a pax header carrying only a comment pads it exactly. Every tar
reader (Go's archive/tar, Python's tarfile, libarchive) skips that comment.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyupdate_artifact import tarsafe
from pyupdate_artifact.compression import Compression
from pyupdate_artifact.errors import InputError, OutputError
from pyupdate_artifact.format.header import HeaderInfo, TypeInfo
from pyupdate_artifact.format.manifest import render_manifest
from pyupdate_artifact.format.version import VERSION_BYTES

from .sign import Signer

CHUNK = 1 << 20
_PLACEHOLDER = "0" * 64
_SLACK = 16 << 10
_HASH_QUEUE = 4 << 20  # bytes waiting for the sha256 thread

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class PayloadSpec:
    """One payload: its type, files and type-info fields."""

    type: str | None
    files: tuple[Path, ...] = ()
    provides: dict[str, str] = field(default_factory=dict)
    depends: dict[str, str | list[str]] = field(default_factory=dict)
    clears_provides: tuple[str, ...] | None = None
    meta_data: bytes | None = None  # None: no meta-data member; b"": an empty one
    checksum_provide: str | None = None  # provides key set to the payload file's sha256


@dataclass(frozen=True, slots=True)
class ArtifactSpec:
    name: str
    device_types: tuple[str, ...]
    payload: PayloadSpec
    compression: Compression
    group: str | None = None
    depends_names: tuple[str, ...] = ()
    depends_groups: tuple[str, ...] = ()
    scripts: tuple[Path, ...] = ()
    level: int | None = None


class _Hasher:
    """sha256 on its own thread, fed in order through a small queue."""

    def __init__(self, depth: int) -> None:
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._digest.update(item)

    def update(self, data: bytes) -> None:
        self._queue.put(data)

    def hexdigest(self) -> str:
        self._queue.put(None)
        self._thread.join()
        return self._digest.hexdigest()


def _file_size(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return f.seek(0, os.SEEK_END)
    except OSError as err:
        raise InputError(f"{path}: {err.strerror}") from None


def _mtime(path: Path) -> int:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return int(epoch)
    return int(path.stat().st_mtime)


def _read_scripts(paths: tuple[Path, ...]) -> list[tuple[str, bytes, int]]:
    scripts = []
    for path in paths:
        try:
            scripts.append((path.name, path.read_bytes(), path.stat().st_mode & 0o777))
        except OSError as err:
            raise InputError(f"{path}: {err.strerror}") from None
    return scripts


class _Layout:
    """Builds the members in front of the payload for given payload digests."""

    def __init__(self, spec: ArtifactSpec, signer: Signer | None) -> None:
        self.spec = spec
        self.signer = signer
        self.scripts = _read_scripts(spec.scripts)
        self.header_name = "header.tar" + spec.compression.suffix
        self.data_name = f"data/0000.tar{spec.compression.suffix}"

    def header_blob(self, digests: dict[str, str]) -> bytes:
        spec, payload = self.spec, self.spec.payload
        info = HeaderInfo(
            payload_types=(payload.type,),
            artifact_name=spec.name,
            artifact_group=spec.group,
            device_types=spec.device_types,
            depends_names=spec.depends_names,
            depends_groups=spec.depends_groups,
        )
        provides = dict(payload.provides)
        if payload.checksum_provide and payload.files:
            provides[payload.checksum_provide] = digests[payload.files[0].name]
        type_info = TypeInfo(payload.type, provides, payload.depends, payload.clears_provides)
        parts = [tarsafe.member("header-info", info.to_json())]
        for name, body, mode in self.scripts:
            parts.append(tarsafe.member(f"scripts/{name}", body, mode=mode))
        parts.append(tarsafe.member("headers/0000/type-info", type_info.to_json()))
        if payload.meta_data is not None:
            parts.append(tarsafe.member("headers/0000/meta-data", payload.meta_data))
        parts.append(tarsafe.end_of_archive())
        return self.spec.compression.compress_small(b"".join(parts))

    def prefix(self, digests: dict[str, str], *, estimate: bool = False) -> bytes:
        header = self.header_blob(digests)
        entries = [(f"data/0000/{p.name}", digests[p.name]) for p in self.spec.payload.files]
        entries.append((self.header_name, hashlib.sha256(header).hexdigest()))
        entries.append(("version", hashlib.sha256(VERSION_BYTES).hexdigest()))
        manifest = render_manifest(entries)
        parts = [tarsafe.member("version", VERSION_BYTES), tarsafe.member("manifest", manifest)]
        if self.signer is not None:
            signature = b"x" * 684 if estimate else self.signer.sign(manifest)
            parts.append(tarsafe.member("manifest.sig", signature))
        parts.append(tarsafe.member(self.header_name, header))
        return b"".join(parts)


def _inner_tar_stream(
    files: tuple[Path, ...],
    emit: Callable[[bytes], None],
    progress: Progress | None,
    block: int = CHUNK,
) -> dict[str, str]:
    """Feed the payload tar (flat basenames) to `emit`; return name -> sha256.

    Reads end on the encoder's `block` grid of the tar stream, so after the
    first block each read is one whole block, handed on without a copy.
    """
    digests: dict[str, str] = {}
    position = 0
    for path in files:
        size = _file_size(path)
        mode = path.stat().st_mode & 0o777
        emit(tarsafe.member_header(path.name, size, mode=mode, mtime=_mtime(path)))
        position += tarsafe.BLOCK
        hasher = _Hasher(depth=max(1, _HASH_QUEUE // block))
        done = 0
        try:
            with open(path, "rb", buffering=0) as src:
                while chunk := src.read(block - position % block):
                    hasher.update(chunk)
                    emit(chunk)
                    done += len(chunk)
                    position += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except OSError as err:
            raise InputError(f"{path}: {err.strerror}") from None
        finally:
            digest = hasher.hexdigest()
        if done != size:
            raise InputError(f"{path}: changed while it was read ({done} of {size} bytes)")
        emit(bytes(-size % tarsafe.BLOCK))
        position += -size % tarsafe.BLOCK
        digests[path.name] = digest
    emit(tarsafe.end_of_archive())
    return digests


def write_artifact(
    out_path: str | Path,
    spec: ArtifactSpec,
    signer: Signer | None = None,
    progress: Progress | None = None,
    *,
    _reserve: int | None = None,
) -> None:
    """Write `spec` to `out_path` atomically: a temp file renamed at the end."""
    out_path = Path(out_path)
    layout = _Layout(spec, signer)
    names = [p.name for p in spec.payload.files]
    if len(set(names)) != len(names):
        raise InputError("payload files must have distinct base names")
    estimate = len(layout.prefix(dict.fromkeys(names, _PLACEHOLDER), estimate=True))
    reserve = _reserve if _reserve is not None else estimate + _SLACK
    reserve += -reserve % tarsafe.BLOCK
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        # read-write: the rare slow path (_shift) reads the payload back to move it
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as err:
        raise OutputError(f"{out_path}: cannot create ({err.strerror})") from None
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            flusher = _Flusher(out.fileno())
            try:
                _write_body(out, layout, reserve, progress, flusher)
            finally:
                flusher.stop()
            try:
                os.fsync(out.fileno())
            except OSError as err:
                raise OutputError(f"{out_path}: cannot write ({err.strerror})") from None
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_all(out, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        try:
            written = out.write(view)
        except OSError as err:
            raise OutputError(f"cannot write artifact ({err.strerror})") from None
        view = view[written:]


class _Flusher:
    """fdatasync on a thread every STEP bytes written, so the final fsync finds little left.

    The disk then writes while the input is still being read, hashed and
    compressed: a 1 GiB `none` artifact took 1.7 s this way against 2.2 s with
    one fsync at the end (and 1.8 s with none at all, as mender-artifact does).
    """

    STEP = 64 << 20

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._due = threading.Event()
        self._done = False
        self._written = 0
        self._thread = threading.Thread(target=self._run, name="flush", daemon=True)
        self._thread.start()

    def wrote(self, n: int) -> None:
        self._written += n
        if self._written >= self.STEP:
            self._written = 0
            self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            if self._done:
                return
            with contextlib.suppress(OSError):  # the final fsync reports a failing disk
                os.fdatasync(self._fd)

    def stop(self) -> None:
        self._done = True
        self._due.set()
        self._thread.join()


def _write_body(
    out, layout: _Layout, reserve: int, progress: Progress | None, flusher: _Flusher
) -> None:
    spec = layout.spec
    out.seek(reserve + tarsafe.BLOCK)
    size = 0

    def emit_compressed(data: bytes) -> None:
        nonlocal size
        size += len(data)
        _write_all(out, data)
        flusher.wrote(len(data))

    encoder = spec.compression.open_encoder(emit_compressed, spec.level)
    try:
        digests = _inner_tar_stream(spec.payload.files, encoder.write, progress, encoder.block)
        encoder.close()
    except BaseException:
        encoder.abort()
        raise
    _write_all(out, bytes(-size % tarsafe.BLOCK) + tarsafe.end_of_archive())
    end = out.tell()
    prefix = layout.prefix(digests)
    gap = reserve - len(prefix)
    data_header = tarsafe.member_header(layout.data_name, size, mtime=_mtime_now())
    if gap >= 2 * tarsafe.BLOCK:
        out.seek(0)
        _write_all(out, prefix + tarsafe.pax_filler(gap, layout.data_name) + data_header)
        return
    # The prefix outgrew its room (only with a huge header): shift the payload.
    try:
        _shift(out, reserve + tarsafe.BLOCK, end, prefix + data_header)
    except OSError as err:
        raise OutputError(f"cannot write artifact ({err.strerror})") from None


def _mtime_now() -> int:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return int(epoch) if epoch and epoch.isdigit() else 0


def _shift(out, data_start: int, end: int, head: bytes) -> None:
    """Rewrite the file as head + [data_start, end): the rare slow path."""
    fd = out.fileno()
    length = end - data_start
    new_start = len(head)
    # Copy in the direction that never overwrites bytes not yet moved.
    steps = range(0, length, CHUNK)
    for pos in reversed(steps) if new_start > data_start else steps:
        step = min(CHUNK, length - pos)
        os.pwrite(fd, os.pread(fd, step, data_start + pos), new_start + pos)
    os.pwrite(fd, head, 0)
    os.ftruncate(fd, new_start + length)
