"""The server secret: signs JWTs and download links; created once per data dir.

Rotation (docs/security.md, "Rotating secrets"): the new key signs, the keys in
`previous_secret_keys` still verify until they are removed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pyupdate_server.errors import ConfigError
from pyupdate_server.settings import MIN_SECRET


def load_or_create_secret(data_dir: Path, configured: str | None) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / "secret.key"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_hex(32).encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    os.chmod(path, 0o600)
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET:
        raise ConfigError(f"{path}: secret key must be at least {MIN_SECRET} bytes")
    return secret
