"""The blob store protocol: where artifact files live (local.py: a directory, s3.py: an
S3-compatible object store)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class MultipartUpload(Protocol):
    """An object written part by part: all of it on complete(), nothing after abort()."""

    def add_part(self, data: bytes) -> None: ...

    def complete(self) -> None: ...

    def abort(self) -> None: ...


class BlobStore(Protocol):
    name: str  # "local" or "s3": what /health/ready reports

    def put_file(self, key: str, source: Path) -> None:
        """Take a finished temp file in under `key`, all or nothing (the source is
        consumed); a failure leaves no object behind."""

    def open_upload(self, key: str) -> MultipartUpload | None:
        """An upload the artifact streams into as it arrives, or None when uploads are
        staged in a temp file and handed over with put_file."""

    def local_path(self, key: str) -> Path | None:
        """A path a file response can stream from, or None for remote stores."""

    def download_url(self, key: str, ttl: int) -> str | None:
        """A URL devices fetch the object from directly for `ttl` seconds, or None when
        the server streams it itself (local_path)."""

    def fetch_file(self, key: str, target: Path) -> None:
        """Copy the object to the local file `target` (the delta worker's input)."""

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def ping(self) -> None:
        """Raise StorageUnavailable (or ConfigError) when the store cannot be used now."""
