"""kas.yml and kas/*.yml: schema and merge checked by `kas dump` offline.

kas/offline.yml turns the pinned repos into local paths (url: null), so no
clone happens; the paths need not exist for `dump`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from integrations_helpers import REPO, run, tool

PINNED = {
    "bitbake": "fae9db3168dbff1b8c76fe9c6726a9687ff97514",
    "openembedded-core": "ef022bf82d79015802309d14c28b13373ebe53f5",
}


def kas_dump(spec: str, workdir: Path, cwd: Path = REPO):
    env_result = run([tool("kas"), "dump", spec], cwd=cwd, env=_env(workdir))
    return env_result


def _env(workdir: Path) -> dict[str, str]:
    from integrations_helpers import tool_env

    env = tool_env()
    env["KAS_WORK_DIR"] = str(workdir)
    return env


@pytest.mark.parametrize(
    ("config", "machine"),
    [
        ("kas.yml", "qemux86-64"),
        ("kas/qemux86-64.yml", "qemux86-64"),
        ("kas/qemuarm64.yml", "qemuarm64"),
    ],
)
def test_kas_dump_offline_merges(tmp_path: Path, config: str, machine: str):
    result = kas_dump(f"{config}:kas/offline.yml", tmp_path)
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)
    assert merged["machine"] == machine
    assert merged["target"] == "pyupdate-image-minimal"
    assert "meta-pyupdate" in merged["repos"]["pyupdate"]["layers"]
    for name, commit in PINNED.items():
        assert merged["repos"][name]["commit"] == commit
        assert merged["repos"][name]["url"] is None
    assert 'INHERIT += "pyupdate-full"' in merged["local_conf_header"]["pyupdate"]
    assert 'BB_NO_NETWORK = "1"' in merged["local_conf_header"]["zz-offline"]


def test_every_remote_repo_is_pinned_by_commit():
    config = yaml.safe_load((REPO / "kas.yml").read_text())
    for name, repo in config["repos"].items():
        if repo and repo.get("url"):
            assert re.fullmatch(r"[0-9a-f]{40}", repo.get("commit", "")), name


def test_schema_error_is_reported_offline(tmp_path: Path):
    """The check can fail: a misspelt key is refused before any clone."""
    shutil.copy(REPO / "kas.yml", tmp_path / "kas.yml")
    (tmp_path / "kas").mkdir()
    shutil.copy(REPO / "kas" / "offline.yml", tmp_path / "kas" / "offline.yml")
    bad = (tmp_path / "kas.yml").read_text().replace("machine: qemux86-64", "machien: qemux86-64")
    (tmp_path / "kas.yml").write_text(bad)
    result = kas_dump("kas.yml:kas/offline.yml", tmp_path, cwd=tmp_path)
    assert result.returncode != 0
    assert "machien" in result.stderr
