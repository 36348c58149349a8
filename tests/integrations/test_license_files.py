"""The LICENSE copies in agent/, artifact_tool/reader/, artifact_tool/host/ and server/, and the hashes that pin them.

Each Python distribution ships its own copy of the repository's LICENSE
(pyproject.toml `license-files`), and the build integrations point at those
copies: Buildroot's `<PKG>_LICENSE_FILES` with a sha256 line in the package's
.hash (checked by `make legal-info`), Yocto's LIC_FILES_CHKSUM md5 (checked by
do_populate_lic). Editing the root LICENSE without the copies and both hashes
fails here, not in a user's build.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from integrations_helpers import BR_EXT, LAYER, REPO, run

DISTRIBUTIONS = ("agent", "artifact_tool/reader", "artifact_tool/host", "server")
ROOT_LICENSE = REPO / "LICENSE"
MK_SITE = re.compile(
    r"^(?P<pkg>[A-Z0-9_]+)_SITE = \$\(BR2_EXTERNAL_PYUPDATE_PATH\)/\.\./(?P<dir>\S+)$"
)
HASH_LINE = re.compile(r"^(?P<type>sha256)  (?P<hash>[0-9a-f]{64})  (?P<file>\S+)$")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_each_distribution_has_the_root_license(dist: str):
    assert (REPO / dist / "LICENSE").read_bytes() == ROOT_LICENSE.read_bytes()


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_each_pyproject_declares_its_license_file(dist: str):
    project = tomllib.loads((REPO / dist / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]


def buildroot_packages() -> list[Path]:
    return sorted(BR_EXT.glob("package/*/*.mk"))


@pytest.mark.parametrize("mk", buildroot_packages(), ids=lambda p: p.parent.name)
def test_buildroot_hash_pins_each_license_file(mk: Path):
    """What Buildroot's support/download/check-hash does for legal-info, per LICENSE_FILES entry."""
    text = mk.read_text()
    site = next(m for line in text.splitlines() if (m := MK_SITE.match(line)))
    files = re.search(rf"^{site['pkg']}_LICENSE_FILES = (.+)$", text, re.M)
    assert files, f"{mk.name}: {site['pkg']}_LICENSE_FILES not set"
    hashes = {}
    for line in mk.with_suffix(".hash").read_text().splitlines():
        if line and not line.startswith("#"):
            m = HASH_LINE.match(line)
            assert m, f"{mk.with_suffix('.hash').name}: not `sha256  <hash>  <file>`: {line!r}"
            hashes[m["file"]] = m["hash"]
    for name in files[1].split():
        assert hashes.get(name) == sha256(REPO / site["dir"] / name), name


@pytest.mark.parametrize(
    "recipe", sorted(LAYER.glob("recipes-pyupdate/*/*.bb")), ids=lambda p: p.stem
)
def test_yocto_lic_files_chksum_matches_the_copy(recipe: Path):
    """insane.bbclass populate_lic_qa_checksum: md5 of ${S}/<file> against the recipe's."""
    text = recipe.read_text()
    source = re.search(r'^SRC_URI = "file://(\S+)"$', text, re.M)
    assert source, recipe.name
    for path, md5 in re.findall(r"file://(\S+?);md5=([0-9a-f]{32})", text):
        assert md5 == hashlib.md5((REPO / source[1] / path).read_bytes()).hexdigest(), path


@pytest.mark.slow
def test_each_wheel_ships_the_license(tmp_path: Path):
    """pip builds with the backend pyproject.toml asks for (setuptools>=77 for license-files)."""
    dists = [str(REPO / d) for d in DISTRIBUTIONS]
    built = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), *dists]
    )
    assert built.returncode == 0, built.stderr
    wheels = sorted(tmp_path.glob("*.whl"))
    assert len(wheels) == len(DISTRIBUTIONS)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            dist_info = next(n.split("/")[0] for n in z.namelist() if ".dist-info/" in n)
            assert z.read(f"{dist_info}/licenses/LICENSE") == ROOT_LICENSE.read_bytes()
            assert "License-File: LICENSE" in z.read(f"{dist_info}/METADATA").decode()
