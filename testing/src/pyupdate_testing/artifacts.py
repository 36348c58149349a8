"""Module-image artifacts written with pyupdate's own writer (no Debian tools needed).

Artifacts from Debian's mender-artifact, the reference, are host_device.write_module_artifact.
"""

from __future__ import annotations

from pathlib import Path

from pyupdate_host.sign import Signer


def write_test_artifact(
    out: Path,
    name: str,
    device_types: tuple[str, ...] = ("qemux86-64",),
    payload: bytes = b"payload\n" * 1024,
    module: str = "single-file",
    depends: dict[str, object] | None = None,
    depends_names: tuple[str, ...] = (),
    signer: Signer | None = None,
) -> Path:
    """A gzip module-image artifact at `out` with one file of `payload`, provides and clears."""
    from pyupdate_artifact import compression
    from pyupdate_host.writer import ArtifactSpec, PayloadSpec, write_artifact

    src = out.parent / f"{out.name}.payload"
    src.write_bytes(payload)
    spec = ArtifactSpec(
        name=name,
        device_types=device_types,
        payload=PayloadSpec(
            type=module,
            files=(src,),
            provides={f"rootfs-image.{module}.version": name},
            depends=depends or {},
            clears_provides=(f"rootfs-image.{module}.*",),
        ),
        compression=compression.by_id("gzip"),
        depends_names=depends_names,
    )
    write_artifact(out, spec, signer=signer)
    return out
