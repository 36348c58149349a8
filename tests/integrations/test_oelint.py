"""oelint-adv on every recipe, class, bbappend and include of meta-pyupdate.

Only oelint.vars.homepageping (it fetches HOMEPAGE over the network) and
oelint.bbclass.underscores (class names follow meta-mender's mender-setup
style, see docs/layer-checks.md) are suppressed globally; every other
suppression is inline, with its reason, next to the line it covers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from integrations_helpers import DATA, LAYER, REPO, layer_files, run, tool

SUPPRESSED = ("oelint.vars.homepageping", "oelint.bbclass.underscores")


def oelint(files: list[Path], cwd: Path = REPO):
    argv = [tool("oelint-adv"), "--quiet", "--relpaths", "--hide", "info", "--release", "wrynose"]
    for rule in SUPPRESSED:
        argv += ["--suppress", rule]
    argv += [f"--constantmods=+{DATA / 'oelint-pyupdate.json'}", *map(str, files)]
    return run(argv, cwd=cwd)


def test_layer_has_no_findings():
    files = layer_files(".bb", ".bbappend", ".bbclass", ".inc")
    assert len(files) >= 10
    result = oelint(files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_unconditional_bbappend_change_is_found(tmp_path: Path):
    """The check can fail: an ungated bbappend is what yocto-check-layer also rejects."""
    copy = tmp_path / "meta-pyupdate"
    shutil.copytree(LAYER, copy)
    bbappend = copy / "recipes-bsp" / "u-boot" / "u-boot_%.bbappend"
    bbappend.write_text(bbappend.read_text() + 'DEPENDS:append = " pyupdate-artifact-native"\n')
    result = oelint([bbappend], cwd=tmp_path)
    assert result.returncode != 0
    assert "oelint.vars.noncoreoverride" in result.stdout + result.stderr


def test_old_override_syntax_is_found(tmp_path: Path):
    recipe = tmp_path / "x_1.0.bb"
    src = LAYER / "recipes-pyupdate" / "pyupdate-agent" / "pyupdate-agent_0.1.0.bb"
    recipe.write_text(src.read_text().replace("RDEPENDS:${PN} =", "RDEPENDS_${PN} ="))
    result = oelint([recipe], cwd=tmp_path)
    assert result.returncode != 0
