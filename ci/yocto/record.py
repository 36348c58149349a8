"""The recorded expansion of meta-pyupdate: where it lives, its hash, reading and writing it.

Shared by expand.py (writes it, needs bitbake), run_tasks.py and the tests
(read it, need neither bitbake nor oe-core).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RECORD_DIR = REPO / "tests/integrations/data/yocto-expanded"
FORMAT = 1
# IMAGE_NAME carries the build date; a fixed one keeps the record stable.
DATETIME = "20260101000000"
STALE = "meta-pyupdate changed since the recorded expansion: run ci/yocto/expand.py SNAPSHOT_DIR"


def layer_sha256(layer: Path) -> str:
    """sha256 over every file of the layer (path and content), bytecode caches aside."""
    h = hashlib.sha256()
    for path in sorted(p for p in layer.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        h.update(str(path.relative_to(layer)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def relocate(value: Any, prefixes: dict[str, str]) -> Any:
    """Replace machine paths by placeholders (longest first), in every string of `value`."""
    order = sorted(prefixes, key=len, reverse=True)
    if isinstance(value, str):
        for prefix in order:
            value = value.replace(prefix, prefixes[prefix])
        return value
    if isinstance(value, dict):
        return {k: relocate(v, prefixes) for k, v in value.items()}
    if isinstance(value, list):
        return [relocate(v, prefixes) for v in value]
    return value


def path_for(machine: str, out: Path = RECORD_DIR) -> Path:
    return out / f"{machine}.json"


def write(out: Path, data: dict[str, Any]) -> Path:
    """Atomically: a half-written record would look like a stale layer."""
    out.mkdir(parents=True, exist_ok=True)
    path = path_for(data["machine"], out)
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def load(machine: str, out: Path = RECORD_DIR) -> dict[str, Any]:
    return json.loads(path_for(machine, out).read_text())


def stale(data: dict[str, Any], layer: Path = REPO / "meta-pyupdate") -> bool:
    return data["layer_sha256"] != layer_sha256(layer)
