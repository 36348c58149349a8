"""The signed rootfs artifact of the same slot image, and a bootstrap artifact.

One function per artifact, so the implementation can change in one place:
the lead's `pyupdate_artifact.writer` when it is importable, Debian's
`mender-artifact` otherwise (a stopgap; both write Mender Artifact v3).
"""

from __future__ import annotations

from pathlib import Path

from . import tools
from .errors import InputError


def write_rootfs_artifact(
    image: Path, out: Path, name: str, device_type: str, key: Path | None
) -> None:
    _check_key(key)
    argv = ["mender-artifact", "write", "rootfs-image", "-f", image, "-n", name]
    argv += ["-t", device_type, "-o", out, "--compression", "gzip", "--no-progress"]
    argv += ["-k", key] if key is not None else []
    tools.run(argv)


def write_bootstrap_artifact(out: Path, name: str, device_type: str, key: Path | None) -> None:
    """Empty payload; installing it records `name` as the current artifact (Mender's bootstrap)."""
    _check_key(key)
    argv = ["mender-artifact", "write", "bootstrap-artifact", "-n", name, "-t", device_type]
    argv += ["--provides", f"rootfs-image.version:{name}", "-o", out, "--no-progress"]
    argv += ["-k", key] if key is not None else []
    tools.run(argv)


def _check_key(key: Path | None) -> None:
    if key is not None and not key.is_file():
        raise InputError(f"{key}: signing key not found")
