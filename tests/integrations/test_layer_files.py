"""Static facts about meta-pyupdate, kas and buildroot-ext that no linter checks.

- No AUTOREV anywhere: it cannot even parse offline.
- conf/pyupdate-vars.json, pyupdate-setup.bbclass and docs/yocto.md list the
  same PYUPDATE_* variables (a name in one but not the others is a bug).
- buildroot-ext: every package is declarative and every path a defconfig
  names through $(BR2_EXTERNAL_PYUPDATE_PATH) exists.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from integrations_helpers import BR_EXT, LAYER, REPO

VARS = set(json.loads((LAYER / "conf" / "pyupdate-vars.json").read_text())["variables"])
SETUP = (LAYER / "classes" / "pyupdate-setup.bbclass").read_text()
PYUPDATE_NAME = re.compile(r"\bPYUPDATE_[A-Z0-9_]*[A-Z0-9]\b(?!_)")
# Names used in the layer that are not configuration: class-internal helpers.
INTERNAL = {
    "PYUPDATE_STATE_SCRIPTS",
    "PYUPDATE_STATE_SCRIPTS_DIR",
    "PYUPDATE_NATIVE_TOOLS",
    "PYUPDATE_CONF",
    "PYUPDATE_FSTAB",
}


def text_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def test_no_autorev_anywhere():
    for path in [
        *text_files(LAYER),
        *text_files(BR_EXT),
        REPO / "kas.yml",
        *(REPO / "kas").glob("*.yml"),
    ]:
        assert "${AUTOREV}" not in path.read_text(errors="replace"), path


def test_every_known_variable_has_a_default_in_pyupdate_setup():
    set_there = set(re.findall(r"^(PYUPDATE_[A-Z0-9_]+) \?\?= ", SETUP, re.M))
    set_there |= set(re.findall(r"^(PYUPDATE_[A-Z0-9_]+) = ", SETUP, re.M))
    set_there = {n for n in set_there if not n.endswith("_DEFAULT")}
    set_there |= {"PYUPDATE_LAYERDIR"}  # layer.conf
    assert set_there == VARS


def test_every_user_variable_has_a_comment_and_a_default_variable():
    for name in re.findall(r"^(PYUPDATE_[A-Z0-9_]+) \?\?= ", SETUP, re.M):
        assert re.search(rf"^{name} \?\?= \"\${{{name}_DEFAULT}}\"$", SETUP, re.M), name
        block = SETUP.split(f"\n{name}_DEFAULT")[0].rstrip().splitlines()
        assert block[-1].startswith("#"), f"{name}: no comment above its default"


def test_layer_uses_only_known_variables():
    for path in text_files(LAYER):
        if path.suffix in (".py", ".json"):
            continue
        names = {n.removesuffix("_DEFAULT") for n in PYUPDATE_NAME.findall(path.read_text())}
        unknown = names - VARS - INTERNAL - {"PYUPDATE_CONF"}
        assert not unknown, f"{path}: {sorted(unknown)}"


def test_docs_table_lists_every_variable():
    doc = (REPO / "docs" / "yocto.md").read_text()
    rows = set(re.findall(r"^\| `(PYUPDATE_[A-Z0-9_]+)` \|", doc, re.M))
    assert rows == VARS - {"PYUPDATE_LAYERDIR"}


def test_docs_list_every_buildroot_option():
    doc = (REPO / "docs" / "buildroot.md").read_text()
    options = set()
    for path in BR_EXT.rglob("Config.in*"):
        options |= set(re.findall(r"^config (BR2_[A-Z0-9_]+)", path.read_text(), re.M))
    assert options
    for option in options:
        assert f"`{option}`" in doc, option


@pytest.mark.parametrize("mk", sorted(BR_EXT.glob("package/*/*.mk")), ids=lambda p: p.name)
def test_buildroot_package_is_declarative(mk: Path):
    text = mk.read_text().rstrip().splitlines()
    assert text[-1].startswith("$(eval $(")
    pkg = mk.parent
    assert (pkg / f"{pkg.name}.hash").is_file()
    assert (pkg / "Config.in").is_file() or (pkg / "Config.in.host").is_file()
    sourced = (BR_EXT / "Config.in").read_text()
    for cfg in pkg.glob("Config.in*"):
        assert f"$BR2_EXTERNAL_PYUPDATE_PATH/package/{pkg.name}/{cfg.name}" in sourced


@pytest.mark.parametrize(
    "defconfig", sorted(BR_EXT.glob("configs/*_defconfig")), ids=lambda p: p.name
)
def test_defconfig_paths_exist(defconfig: Path):
    text = defconfig.read_text()
    paths = re.findall(r"\$\(BR2_EXTERNAL_PYUPDATE_PATH\)/([^\"\s]+)", text)
    assert paths
    for rel in paths:
        assert (BR_EXT / rel).exists(), rel
    for needed in (
        "BR2_TARGET_UBOOT=y",
        "BR2_PACKAGE_PYTHON_PYUPDATE_AGENT=y",
        "BR2_PACKAGE_HOST_GENIMAGE=y",
    ):
        assert needed in text.splitlines()
