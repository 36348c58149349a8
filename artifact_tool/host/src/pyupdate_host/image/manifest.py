"""sha256 manifest of the build products, in `sha256sum -c` format."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(files: list[Path], out: Path) -> None:
    """Names are relative to the manifest's directory, so `sha256sum -c` runs there."""
    out.write_text("".join(f"{sha256_file(p)}  {p.name}\n" for p in files))
