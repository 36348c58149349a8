"""Blob store on the local file system, under <data dir>/artifacts."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from pyupdate_server.errors import StorageUnavailable

_KEY = re.compile(r"^[A-Za-z0-9._-]+$")


class LocalBlobStore:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)  # artifacts may carry secrets of their own

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or key in (".", ".."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key

    def put_file(self, key: str, source: Path) -> None:
        target = self._path(key)
        with open(source, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(source, target)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def open_upload(self, key: str) -> None:
        return None  # staged in tmp/ and renamed in: a local copy gains nothing by streaming

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def download_url(self, key: str, ttl: int) -> str | None:
        return None  # the server streams the file itself (api/devices/download.py)

    def fetch_file(self, key: str, target: Path) -> None:
        shutil.copyfile(self._path(key), target)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def ping(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)):
            raise StorageUnavailable(f"artifact store {self.root} is missing or not writable")

    def __str__(self) -> str:
        return str(self.root)
