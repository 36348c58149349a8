"""The signed rootfs artifact of the same slot image, and a bootstrap artifact.

Written with the library's writer (pyupdate_host.writer), with the same
defaults `mender-artifact write` 3.9 uses (rootfs-image.version, checksum
provide, clears list), so Mender clients and servers read them unchanged.
"""

from __future__ import annotations

from pathlib import Path

from pyupdate_artifact import compression
from pyupdate_artifact import errors as artifact_errors

from ..defaults import ROOTFS, rootfs_payload
from ..sign import load_signer
from ..writer import ArtifactSpec, PayloadSpec, write_artifact
from .errors import ImageError, InputError
from .manifest import sha256_file


def write_rootfs_artifact(
    image: Path,
    out: Path,
    name: str,
    device_type: str,
    key: Path | None,
    scripts: tuple[Path, ...] = (),
) -> None:
    """`scripts`: state scripts carried in the artifact (Artifact* states, docs/state-scripts.md)."""
    _write(out, name, device_type, rootfs_payload(image, name), key, scripts)


def write_bootstrap_artifact(
    out: Path, name: str, device_type: str, key: Path | None, image: Path | None = None
) -> None:
    """Empty payload; installing it records `name` as the current artifact (Mender's
    bootstrap), and with `image` (the slot image the disk boots first) its
    `rootfs-image.checksum`, so the device can take a delta as its first update."""
    provides = {f"{ROOTFS}.version": name}
    if image is not None:
        provides[f"{ROOTFS}.checksum"] = sha256_file(image)
    _write(out, name, device_type, PayloadSpec(type=None, provides=provides), key)


def _write(
    out: Path,
    name: str,
    device_type: str,
    payload: PayloadSpec,
    key: Path | None,
    scripts: tuple[Path, ...] = (),
) -> None:
    if key is not None and not key.is_file():
        raise InputError(f"{key}: signing key not found")
    spec = ArtifactSpec(
        name=name,
        device_types=(device_type,),
        payload=payload,
        compression=compression.by_id(compression.DEFAULT),
        scripts=scripts,
    )
    try:
        write_artifact(out, spec, load_signer(key) if key is not None else None)
    except artifact_errors.ArtifactError as exc:
        raise ImageError(f"{out.name}: {exc}") from exc
