"""Everything a request handler needs, built once from Settings by app.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyupdate_server.auth.jwt import TokenSigner
from pyupdate_server.auth.passwords import PasswordPool
from pyupdate_server.db.engine import Database
from pyupdate_server.metrics import Metrics
from pyupdate_server.services.artifacts import ArtifactValidator
from pyupdate_server.services.audit import Auditor
from pyupdate_server.services.links import LinkSigner
from pyupdate_server.settings import Settings
from pyupdate_server.storage.base import BlobStore


@dataclass(slots=True)
class ServerState:
    settings: Settings
    db: Database
    store: BlobStore
    tokens: TokenSigner
    links: LinkSigner
    full_links: LinkSigner  # a delta's fallback to the full artifact (FULL_SOURCE_PATH)
    metrics: Metrics
    tmp_dir: Path
    validator: ArtifactValidator
    passwords: PasswordPool
    audit: Auditor
