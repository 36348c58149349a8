"""The provides and clears_provides `mender-artifact write` adds by default.

One place for the CLI and the image builder (docs/artifact-format.md#provides).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI's parser imports this module; the writer loads with `write`
    from .writer import PayloadSpec

ROOTFS = "rootfs-image"


def software_defaults(
    artifact_name: str,
    module_type: str | None = None,
    *,
    software_name: str | None = None,
    software_filesystem: str | None = None,
    software_version: str | None = None,
    no_default_version: bool = False,
    user_clears: tuple[str, ...] = (),
    no_default_clears: bool = False,
) -> tuple[dict[str, str], tuple[str, ...]]:
    """`rootfs-image[.X].version` and the default clears list, after the user's."""
    if no_default_version:
        return {}, user_clears
    filesystem = software_filesystem or ROOTFS
    name = software_name or module_type
    prefix = f"{filesystem}.{name}." if name else f"{filesystem}."
    provides = {f"{prefix}version": software_version or artifact_name}
    clears = list(user_clears)
    if not no_default_clears:
        # mender-artifact 3.9 adds these two only for the plain `rootfs-image.` prefix,
        # not with --software-name or another --software-filesystem (measured)
        if module_type is None and prefix == f"{ROOTFS}.":
            clears += ["artifact_group", "rootfs_image_checksum"]
        clears.append(f"{prefix}*")
    return provides, tuple(clears)


def rootfs_payload(image: Path, artifact_name: str) -> PayloadSpec:
    """A rootfs-image payload exactly as `mender-artifact write rootfs-image` makes it."""
    from .writer import PayloadSpec

    provides, clears = software_defaults(artifact_name)
    return PayloadSpec(
        type=ROOTFS,
        files=(image,),
        provides=provides,
        clears_provides=clears,
        meta_data=b"",
        checksum_provide=f"{ROOTFS}.checksum",
    )
