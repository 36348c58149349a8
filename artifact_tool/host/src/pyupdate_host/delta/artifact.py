"""make_delta: OLD.mender and NEW.mender in, a signed `pyupdate-delta` artifact out.

The delta artifact installs only where OLD's image runs (it depends on OLD's
rootfs-image.checksum) and leaves the device providing exactly what NEW
provides, with NEW's name, group, device types and state scripts.
Contract: docs/delta-format.md#artifact.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pyupdate_artifact import compression
from pyupdate_artifact.delta import DELTA_FILE, DELTA_TYPE
from pyupdate_artifact.errors import ArtifactError, InputError, OutputError, UsageError
from pyupdate_artifact.model import ArtifactHeader, Payload
from pyupdate_artifact.reader import ArtifactReader

from ..sign import Signer
from ..writer import ArtifactSpec, PayloadSpec, write_artifact
from .encode import EncodeStats, encode_images

CHECKSUM = "rootfs-image.checksum"
ROOTFS = "rootfs-image"


class DeltaNotSmaller(UsageError):
    """The delta artifact would not be smaller than NEW.mender: send the full one."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class DeltaResult:
    old_artifact_size: int
    new_artifact_size: int
    delta_artifact_size: int
    encode: EncodeStats
    seconds: float


@dataclass(frozen=True, slots=True)
class _Rootfs:
    header: ArtifactHeader
    payload: Payload
    image: Path
    sha256: str


class _FileSink:
    """Receives the one payload file of a rootfs-image artifact into `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file = None

    def open_file(self, payload: Payload, name: str, size: int) -> _FileSink:
        self._file = open(self._path, "wb")  # noqa: SIM115 (closed by finish/abort)
        return self

    def write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)

    def finish(self) -> None:
        assert self._file is not None
        self._file.close()

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
        self._path.unlink(missing_ok=True)


def _extract(artifact: Path, image: Path, role: str) -> _Rootfs:
    try:
        with open(artifact, "rb", buffering=0) as stream:
            reader = ArtifactReader(stream)
            header = reader.read_header()
            if len(header.payloads) != 1 or header.payloads[0].type != ROOTFS:
                types = ", ".join(str(p.type) for p in header.payloads) or "none"
                raise InputError(
                    f"{role} {artifact}: payload type is {types}; "
                    "a delta needs a rootfs-image artifact with one payload"
                )
            payload = header.payloads[0]
            if len(payload.files) != 1:
                raise InputError(f"{role} {artifact}: the rootfs-image payload must hold one file")
            reader.read_payloads(_FileSink(image))
    except OSError as err:
        raise InputError(f"{role} {artifact}: {err.strerror}") from None
    except InputError:
        raise
    except ArtifactError as err:
        raise type(err)(f"{role} {artifact}: {err}") from None
    sha = payload.files[0].sha256
    provided = payload.type_info.provides.get(CHECKSUM)
    if provided is not None and provided != sha:
        raise InputError(f"{role} {artifact}: provides {CHECKSUM} {provided}, its image is {sha}")
    return _Rootfs(header, payload, image, sha)


def _check_pair(old: _Rootfs, new: _Rootfs, old_path: Path, new_path: Path) -> None:
    if CHECKSUM not in old.payload.type_info.provides:
        raise InputError(
            f"OLD {old_path}: provides no {CHECKSUM}, so no device can be known to run it "
            "(it was written with --no-checksum-provide)"
        )
    if not set(old.header.device_types) & set(new.header.device_types):
        raise InputError(
            f"device types differ: OLD {old_path} is for {', '.join(old.header.device_types)}, "
            f"NEW {new_path} for {', '.join(new.header.device_types)}"
        )
    if old.sha256 == new.sha256:
        raise InputError(f"OLD {old_path} and NEW {new_path} hold the same image")


def _scripts(header: ArtifactHeader, folder: Path) -> tuple[Path, ...]:
    folder.mkdir()
    paths = []
    for name, body in header.scripts.items():
        path = folder / name
        path.write_bytes(body)
        path.chmod(0o755)
        paths.append(path)
    return tuple(paths)


def _spec(new: _Rootfs, old_sha: str, delta: Path, scripts: tuple[Path, ...]) -> ArtifactSpec:
    info = new.payload.type_info
    provides = dict(info.provides)
    provides[CHECKSUM] = new.sha256
    depends = dict(info.depends)
    depends[CHECKSUM] = old_sha
    return ArtifactSpec(
        name=new.header.artifact_name,
        device_types=new.header.device_types,
        group=new.header.artifact_group,
        depends_names=new.header.header_info.depends_names,
        depends_groups=new.header.header_info.depends_groups,
        scripts=scripts,
        compression=compression.by_id("none"),
        payload=PayloadSpec(
            type=DELTA_TYPE,
            files=(delta,),
            provides=provides,
            depends=depends,
            clears_provides=info.clears_provides,
        ),
    )


def make_delta(
    old_artifact: Path, new_artifact: Path, out: Path, *, signer: Signer | None = None
) -> DeltaResult:
    """Write the delta artifact from OLD to NEW at `out` (atomically), or raise DeltaNotSmaller."""
    began = time.monotonic()
    old_artifact, new_artifact, out = Path(old_artifact), Path(new_artifact), Path(out)
    # scratch next to the output: images are large (no tmpfs), and the rename stays atomic
    try:
        scratch = tempfile.TemporaryDirectory(prefix=".delta-", dir=out.parent or ".")
    except OSError as err:
        raise OutputError(f"{out}: cannot create a scratch directory ({err.strerror})") from None
    with scratch as tmp:
        folder = Path(tmp)
        old = _extract(old_artifact, folder / "old.img", "OLD")
        new = _extract(new_artifact, folder / "new.img", "NEW")
        _check_pair(old, new, old_artifact, new_artifact)
        delta = folder / DELTA_FILE
        try:
            with open(delta, "wb") as stream:
                stats = encode_images(old.image, new.image, stream)
        except OSError as err:
            raise OutputError(f"{out}: cannot write the delta ({err.strerror})") from None
        for image in (old.image, new.image):
            image.unlink()
        staged = folder / "delta.mender"
        spec = _spec(new, old.sha256, delta, _scripts(new.header, folder / "scripts"))
        write_artifact(staged, spec, signer)
        size = staged.stat().st_size
        full = new_artifact.stat().st_size
        if size >= full:
            raise DeltaNotSmaller(
                f"the delta ({size} bytes) is not smaller than NEW {new_artifact} "
                f"({full} bytes): send the full artifact"
            )
        try:
            os.replace(staged, out)
        except OSError as err:
            raise OutputError(f"{out}: cannot write ({err.strerror})") from None
    return DeltaResult(
        old_artifact_size=old_artifact.stat().st_size,
        new_artifact_size=full,
        delta_artifact_size=size,
        encode=stats,
        seconds=time.monotonic() - began,
    )
