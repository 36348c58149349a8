"""The server secret: signs JWTs and download links; created once per data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_secret(data_dir: Path, configured: str | None) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_hex(32).encode())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path.read_bytes().strip()
