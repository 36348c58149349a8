"""The shell of meta-pyupdate's classes, run outside bitbake with the real tools.

bitbake expands `${VAR}` before the shell sees a function; this does the same
expansion from a dict, defines `bbfatal` as bitbake's shell helper does (print,
exit 1), and runs the function with bash. So `IMAGE_CMD:pyupdate` is exercised
against the real `pyupdate-artifact` (and Debian's mender-artifact judges the
result) in CI, where no Yocto build can run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from integrations_helpers import LAYER, run, tool_env

CLASS = LAYER / "classes" / "pyupdate-artifact.bbclass"
SCRIPTS_CLASS = LAYER / "classes" / "pyupdate-state-scripts.bbclass"


def shell_function(path: Path, header: str) -> str:
    text = path.read_text()
    start = text.index(header + "\n") + len(header) + 1
    end = text.index("\n}\n", start)
    return text[start:end]


def expand(body: str, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        return values[m.group(1)]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, body)


def run_shell(body: str, values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = 'bbfatal() { echo "ERROR: $*" >&2; exit 1; }\nset -e\n' + expand(body, values)
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=tool_env(), check=False
    )


@pytest.fixture
def image_values(tmp_path: Path) -> dict[str, str]:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    ext4 = deploy / "img-qemux86-64.rootfs-20260101.ext4"
    assert run(["mkfs.ext4", "-q", "-F", "-L", "rootfs", str(ext4), "8M"]).returncode == 0
    return {
        "IMGDEPLOYDIR": str(deploy),
        "IMAGE_NAME": "img-qemux86-64.rootfs-20260101",
        "IMAGE_LINK_NAME": "img-qemux86-64.rootfs",
        "PYUPDATE_ROOTFS_PART_SIZE_MB": "16",
        "PYUPDATE_ARTIFACT_NAME": "release-1",
        "PYUPDATE_ARTIFACT_COMPRESSION": "gzip",
        "PYUPDATE_DEVICE_TYPES_COMPATIBLE": "qemux86-64 qemux86-64-rev2",
        "PYUPDATE_ARTIFACT_PROVIDES": "data-partition.version:3",
        "PYUPDATE_ARTIFACT_DEPENDS": "",
        "PYUPDATE_ARTIFACT_SIGNING_KEY": "",
        "PYUPDATE_ARTIFACT_EXTRA_ARGS": "",
    }


@pytest.mark.peers
def test_image_cmd_writes_a_signed_artifact(image_values, tmp_path: Path):
    key, pub = tmp_path / "k.pem", tmp_path / "p.pem"
    run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            str(key),
        ]
    )
    run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)])
    values = {**image_values, "PYUPDATE_ARTIFACT_SIGNING_KEY": str(key)}
    result = run_shell(shell_function(CLASS, "IMAGE_CMD:pyupdate() {"), values)
    assert result.returncode == 0, result.stderr
    link = Path(values["IMGDEPLOYDIR"]) / "img-qemux86-64.rootfs.mender"
    assert link.is_symlink() and link.resolve().name == "img-qemux86-64.rootfs-20260101.mender"
    read = run(["mender-artifact", "read", "-k", str(pub), str(link)])
    assert read.returncode == 0, read.stderr
    assert "signed and verified correctly" in read.stdout
    assert "qemux86-64-rev2" in read.stdout and "data-partition.version: 3" in read.stdout


def test_image_cmd_refuses_a_rootfs_bigger_than_the_slot(image_values):
    values = {**image_values, "PYUPDATE_ROOTFS_PART_SIZE_MB": "4"}
    result = run_shell(shell_function(CLASS, "IMAGE_CMD:pyupdate() {"), values)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        "ERROR: PYUPDATE_ROOTFS_PART_SIZE_MB: the rootfs is 8388608 bytes"
    )
    assert not (Path(values["IMGDEPLOYDIR"]) / "img-qemux86-64.rootfs-20260101.mender").exists()


def test_artifact_info_postprocess(tmp_path: Path):
    values = {
        "IMAGE_ROOTFS": str(tmp_path / "rootfs"),
        "sysconfdir": "/etc",
        "PYUPDATE_ARTIFACT_NAME": "release-1",
        "PYUPDATE_DEVICE_TYPE": "qemux86-64",
    }
    result = run_shell(shell_function(CLASS, "pyupdate_artifact_info() {"), values)
    assert result.returncode == 0, result.stderr
    assert (
        tmp_path / "rootfs/etc/pyupdate/artifact_info"
    ).read_text() == "artifact_name=release-1\n"
    assert (tmp_path / "rootfs/etc/pyupdate/device_type").read_text() == "device_type=qemux86-64\n"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("ArtifactInstall_Leave_50_check-space", True),
        ("Download_Enter_00", True),
        ("Install_Leave_5", False),
    ],
)
def test_state_script_names_are_checked(tmp_path: Path, name: str, ok: bool):
    unpack = tmp_path / "sources"
    unpack.mkdir()
    (unpack / name).write_text("#!/bin/sh\nexit 0\n")
    values = {
        "D": str(tmp_path / "image"),
        "PYUPDATE_STATE_SCRIPTS_DIR": "/etc/pyupdate/scripts",
        "PYUPDATE_STATE_SCRIPTS": name,
        "UNPACKDIR": str(unpack),
    }
    result = run_shell(shell_function(SCRIPTS_CLASS, "do_install:append() {"), values)
    if ok:
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "image/etc/pyupdate/scripts" / name).stat().st_mode & 0o111
    else:
        assert result.returncode == 1
        assert result.stderr.strip().startswith(f"ERROR: PYUPDATE_STATE_SCRIPTS: {name} is not")
