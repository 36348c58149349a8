"""Artifacts: validate an uploaded file with the shared reader, store it, describe it.

The reader (pyupdate_artifact, docs/artifact-library.md) checks structure,
every checksum and, when keys are configured, the signature; we never parse
the format here.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyupdate_artifact import errors as artifact_errors
from pyupdate_artifact.model import ArtifactHeader
from pyupdate_artifact.reader import read_artifact
from pyupdate_artifact.verify import Verifier, load_verifier
from pyupdate_server.db.models import Artifact, Deployment
from pyupdate_server.errors import BadRequest, ConfigError, Conflict, NotFound, Unprocessable
from pyupdate_server.storage.base import BlobStore

MAX_NAME = 256  # the column's size, and what a deployment may name


class ArtifactValidator:
    """Wraps read_artifact with the server's signature policy."""

    def __init__(self, verify_keys: tuple[Path, ...] = (), require_signature: bool = False):
        self.verify_key_paths = verify_keys
        self.require_signature = require_signature
        self._keys: list[Verifier] | None = None

    def load_keys(self) -> None:
        """Load the verify keys now, so a bad key file stops `serve` instead of an upload."""
        try:
            self._verifiers()
        except artifact_errors.ArtifactError as exc:
            raise ConfigError(f"verify_keys: {exc}") from None

    def _verifiers(self) -> list[Verifier]:
        if self._keys is None:
            self._keys = [load_verifier(str(p)) for p in self.verify_key_paths]
        return self._keys

    def read_header(self, source: Path | BinaryIO) -> ArtifactHeader:
        """The artifact's header after a full check, or Unprocessable with the reader's line.

        source: a file, or a stream (an upload on its way into an object store)."""
        try:
            header = read_artifact(
                source if not isinstance(source, Path) else str(source),
                verify_keys=self._verifiers(),
                require_signature=self.require_signature,
                sink=None,
            )
        except artifact_errors.ArtifactError as exc:
            raise Unprocessable(f"artifact rejected: {exc}") from None
        check_name(header.artifact_name)
        return header


def check_name(name: str) -> None:
    """A control character in a name breaks every place that shows it (headers, logs,
    terminals); other characters are served through RFC 6266 `filename*`."""
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        raise BadRequest(f"artifact rejected: name {name[:64]!r} contains control characters")
    if len(name) > MAX_NAME:
        raise BadRequest(f"artifact rejected: name over {MAX_NAME} characters")


def depends_key(device_types: list[str], depends: dict[str, object]) -> str:
    return json.dumps({"device_types": sorted(device_types), "depends": depends}, sort_keys=True)


def check_new(session: Session, header: ArtifactHeader) -> None:
    """409 if an artifact with this name and depends exists (before the upload is stored)."""
    device_types = list(header.device_types)
    depends = {k: v for k, v in dict(header.depends).items() if k != "device_type"}
    key = depends_key(device_types, depends)
    exists = session.scalar(
        select(Artifact.id).where(
            Artifact.name == header.artifact_name, Artifact.depends_key == key
        )
    )
    if exists is not None:
        raise Conflict(
            f"artifact {header.artifact_name!r} with the same depends already exists ({exists})"
        )


def new_blob() -> tuple[str, str]:
    """A new artifact's id and the store key its file goes under."""
    artifact_id = str(uuid.uuid4())
    return artifact_id, f"{artifact_id}.mender"


def store_artifact(
    session: Session,
    artifact_id: str,
    blob: str,
    header: ArtifactHeader,
    size: int,
    sha256: str,
    description: str,
) -> Artifact:
    """Record an artifact whose file is already in the store under `blob`; 409 if
    name+depends already exist. The caller removes the file if this does not commit."""
    h = header
    check_new(session, h)
    device_types = list(h.device_types)
    depends = {k: v for k, v in dict(h.depends).items() if k != "device_type"}
    provides: dict[str, str] = dict(h.type_provides)
    provides["artifact_name"] = h.artifact_name
    if h.artifact_group:
        provides["artifact_group"] = h.artifact_group
    artifact = Artifact(
        id=artifact_id,
        name=h.artifact_name,
        description=description,
        device_types=device_types,
        depends=depends,
        depends_key=depends_key(device_types, depends),
        provides=provides,
        clears_provides=list(h.clears_provides) if h.clears_provides is not None else None,
        payload_types=[p.type for p in h.payloads],
        signed=h.signed,
        size=size,
        sha256=sha256,
        blob=blob,
    )
    session.add(artifact)
    session.flush()
    return artifact


def delete_artifact(session: Session, store: BlobStore, artifact_id: str) -> None:
    artifact = session.get(Artifact, artifact_id)
    if artifact is None:
        raise NotFound(f"artifact {artifact_id} not found")
    in_use = session.scalar(
        select(Deployment.id).where(
            Deployment.artifact_name == artifact.name, Deployment.status != "finished"
        )
    )
    if in_use is not None:
        raise Conflict(f"artifact {artifact.name!r} is used by unfinished deployment {in_use}")
    blob = artifact.blob
    session.delete(artifact)
    session.flush()
    store.delete(blob)
