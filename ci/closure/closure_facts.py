"""Where the closure checks get their facts: live snapshots, else the committed record.

Live when PYUPDATE_SNAPSHOTS names a directory with bitbake/,
openembedded-core/ and buildroot/ (never fetched by a script, never
committed). Otherwise the record in tests/integrations/data/closure/, made
from the same snapshots by `ci/closure/record.py SNAPSHOT_DIR`, with a
sha256 of the inputs it was made from: when they drift, the checks say so in
one line instead of checking stale facts.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import buildroot_closure
import yocto_closure
from agent_closure import REPO

RECORD = REPO / "tests" / "integrations" / "data" / "closure"
RERECORD = "run ci/closure/record.py SNAPSHOT_DIR"


def snapshots() -> Path | None:
    """The snapshot dir from PYUPDATE_SNAPSHOTS, if it holds all three trees."""
    value = os.environ.get("PYUPDATE_SNAPSHOTS")
    if not value:
        return None
    snap = Path(value)
    if all((snap / d).is_dir() for d in ("bitbake", "openembedded-core", "buildroot")):
        return snap
    return None


def buildroot_inputs(ext: Path = buildroot_closure.BR_EXT) -> list[Path]:
    """The files of the external tree a resolved .config and show-info depend on."""
    files = [p for p in ext.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    keep = []
    for p in sorted(files):
        rel = p.relative_to(ext)
        if (
            rel.parts[0] in ("configs", "package")
            or len(rel.parts) == 1
            or p.suffix in (".fragment", ".config")
            or p.name.endswith("_defconfig")
        ):
            keep.append(p)
    return keep


def inputs_sha256(ext: Path = buildroot_closure.BR_EXT) -> str:
    digest = hashlib.sha256()
    for path in buildroot_inputs(ext):
        digest.update(str(path.relative_to(ext)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def live_oe_core(snap: Path) -> dict[str, object]:
    return yocto_closure.read_manifest(snap / "openembedded-core")


def live_buildroot(snap: Path, ext: Path = buildroot_closure.BR_EXT) -> dict[str, object]:
    buildroot = snap / "buildroot"
    with tempfile.TemporaryDirectory(prefix="pyupdate-closure-") as work:
        defconfigs = {
            p.name: buildroot_closure.defconfig_facts(buildroot, ext, p.name, Path(work))
            for p in sorted((ext / "configs").glob("*_defconfig"))
        }
    return {
        "inputs_sha256": inputs_sha256(ext),
        "python_modules": buildroot_closure.python_module_options(buildroot),
        "defconfigs": defconfigs,
    }


def recorded(name: str) -> dict[str, object]:
    return json.loads((RECORD / name).read_text(encoding="utf-8"))


def drift(facts: dict[str, object], ext: Path = buildroot_closure.BR_EXT) -> str | None:
    """One line when the external tree differs from what the record was made from."""
    if facts.get("inputs_sha256") != inputs_sha256(ext):
        return f"buildroot-ext changed since the record: {RERECORD}"
    names = sorted(p.name for p in (ext / "configs").glob("*_defconfig"))
    if names != sorted(facts["defconfigs"]):  # type: ignore[arg-type]
        return f"buildroot-ext's defconfigs changed since the record: {RERECORD}"
    return None
