"""The bootstrap artifact: what a freshly flashed device provides, from its build.

A device flashed from a disk image has no store yet, so it knows its artifact name only
from artifact_info and nothing of `rootfs-image.checksum`: a delta (which depends on
that checksum) could not reach it before one full update. The image build puts an
empty-payload artifact carrying those provides at `<data>/bootstrap.mender` (Mender's
"automatic bootstrap Artifact", the same file and rules as mender 3.4, which reads it
from /var/lib/mender): the first start of the daemon or of `pyupdate install` records
its provides as the device's, when the store has none yet, and removes the file
whatever happened, so a bad file is read once, not at every start.

Like Mender it is not signature-checked (the build wrote it to the device's own data
partition; a signed one is accepted too) and must be a bootstrap artifact: one payload
with no files, provides, no depends, no scripts, and the device's type.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from pyupdate_artifact.errors import ArtifactError
from pyupdate_artifact.model import ArtifactHeader
from pyupdate_artifact.provides import provides_after_commit
from pyupdate_artifact.reader import read_artifact

from .config import Config, read_device_type
from .errors import ConfigError
from .store import Store

log = logging.getLogger(__name__)

BOOTSTRAP_NAME = "bootstrap.mender"
MAX_SIZE = 1 << 20  # an empty payload and a header: anything bigger is not one


class NotBootstrap(Exception):
    """The file is not a bootstrap artifact for this device (one line)."""


def take_bootstrap(store: Store, data_dir: Path, config: Config) -> dict[str, str] | None:
    """Record the bootstrap artifact's provides if the store has none, then remove the
    file; the provides recorded, or None (no file, a store that had provides, or a file
    that is not a bootstrap artifact: a warning says which)."""
    path = data_dir / BOOTSTRAP_NAME
    if not path.exists():
        return None
    try:
        if store.current_provides() is not None:
            return None  # the device has a record: the build's first word is old news
        provides = bootstrap_provides(path, read_device_type(config, data_dir))
        if not store.record_first_provides(provides):
            return None
        log.info("bootstrap artifact recorded", extra={"artifact_name": provides["artifact_name"]})
        return provides
    except (NotBootstrap, ConfigError) as err:
        log.warning(f"{path}: ignored: {err}")
        return None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def bootstrap_provides(path: Path, device_type: str | None) -> dict[str, str]:
    """The provides the bootstrap artifact at `path` gives a device with no record."""
    try:
        size = path.stat().st_size
        if size > MAX_SIZE:
            raise NotBootstrap(f"{size} bytes: a bootstrap artifact is at most {MAX_SIZE}")
        header = read_artifact(path)
    except ArtifactError as err:
        raise NotBootstrap(str(err).splitlines()[0]) from None
    except OSError as err:
        raise NotBootstrap(err.strerror or str(err)) from None
    _check(header, device_type)
    return provides_after_commit({}, header)


def _check(header: ArtifactHeader, device_type: str | None) -> None:
    if len(header.payloads) != 1:
        raise NotBootstrap(f"{len(header.payloads)} payloads: a bootstrap artifact has one")
    payload = header.payloads[0]
    if payload.type is not None or payload.files:
        raise NotBootstrap("its payload is not empty")
    if header.scripts:
        raise NotBootstrap("it has state scripts")
    if header.depends:
        raise NotBootstrap("it has depends")
    if not header.type_provides:
        raise NotBootstrap("it provides nothing")
    if device_type is not None and device_type not in header.device_types:
        raise NotBootstrap(f"it is not for device type {device_type!r}")
