"""The blob store protocol: where artifact files live (local disk now, S3 later)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class BlobStore(Protocol):
    def put_file(self, key: str, source: Path) -> None:
        """Move a finished temp file in under `key` (atomically; the source is consumed)."""

    def local_path(self, key: str) -> Path | None:
        """A path a file response can stream from, or None for remote stores."""

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...
