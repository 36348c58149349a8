"""Artifacts for the delta tests: rootfs images that provide `rootfs-image.checksum`, and
delta-shaped artifacts (the contract's shape: one `pyupdate-delta` payload that depends
on the old image's checksum and provides the new one's), written with pyupdate's writer."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pyupdate_host.sign import Signer

DEVICE_TYPE = "qemux86-64"
CHECKSUM = "rootfs-image.checksum"


def image(tmp: Path, name: str, size: int = 256 * 1024, seed: int = 0) -> Path:
    """A small rootfs image: repeating text, changed a little by `seed`."""
    path = tmp / f"{name}.img"
    block = (f"{name}-{seed}\n".encode() * 4096)[:4096]
    path.write_bytes((block * (size // 4096 + 1))[:size])
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rootfs_artifact(
    tmp: Path,
    name: str,
    img: Path,
    *,
    signer: Signer | None = None,
    compression: str = "none",
) -> Path:
    from pyupdate_artifact import compression as comp
    from pyupdate_host.writer import ArtifactSpec, PayloadSpec, write_artifact

    out = tmp / f"{name}.mender"
    spec = ArtifactSpec(
        name=name,
        device_types=(DEVICE_TYPE,),
        payload=PayloadSpec(
            type="rootfs-image",
            files=(img,),
            provides={"rootfs-image.version": name},
            checksum_provide=CHECKSUM,
        ),
        compression=comp.by_id(compression),
    )
    write_artifact(out, spec, signer=signer)
    return out


def delta_shaped(tmp: Path, name: str, old: Path, new: Path, body: bytes = b"d" * 512) -> Path:
    """An artifact of the delta's shape (what `pyupdate-artifact delta` writes), its body
    a stand-in: the server never looks inside a payload."""
    from pyupdate_artifact import compression as comp
    from pyupdate_host.writer import ArtifactSpec, PayloadSpec, write_artifact

    src = tmp / "rootfs.delta"
    src.write_bytes(body)
    out = tmp / f"{name}-from-{sha256(old)[:8]}.mender"
    spec = ArtifactSpec(
        name=name,
        device_types=(DEVICE_TYPE,),
        payload=PayloadSpec(
            type="pyupdate-delta",
            files=(src,),
            provides={CHECKSUM: sha256(new), "rootfs-image.version": name},
            depends={CHECKSUM: sha256(old)},
        ),
        compression=comp.by_id("none"),
    )
    write_artifact(out, spec)
    return out
