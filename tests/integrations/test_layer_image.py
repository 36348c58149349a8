"""What meta-pyupdate puts into an updatable image, run outside bitbake.

The shell of pyupdate-image.bbclass and the agent recipe is expanded from a
dict as bitbake would (test_artifact_class.run_shell) and run with bash and
the host tools; the agent itself then judges the result where it reads it
(state scripts, config). The same bodies expanded by tinfoil for qemux86-64
and qemuarm64 are in docs/layer-checks.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from integrations_helpers import LAYER
from pyupdate_layer import board
from test_artifact_class import run_shell, shell_function

from pyupdate_agent.config import parse_config
from pyupdate_agent.errors import ScriptError
from pyupdate_agent.scripts import ScriptRunner, ScriptSettings

IMAGE_CLASS = LAYER / "classes" / "pyupdate-image.bbclass"
SCRIPTS_CLASS = LAYER / "classes" / "pyupdate-state-scripts.bbclass"
AGENT_RECIPE = LAYER / "recipes-pyupdate" / "pyupdate-agent" / "pyupdate-agent_0.1.0.bb"
FSTAB_EXPR = "${@pyupdate_layer.board.fstab_text(d.getVar)}"


def inline_python(recipe_text: str, variable: str) -> str:
    """The `${@...}` expression a recipe assigns to `variable`."""
    m = re.search(rf'^{re.escape(variable)} = "\$\{{@(.*)\}}"$', recipe_text, re.M)
    assert m, variable
    return m.group(1)


class FakeData:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def getVar(self, name: str) -> str | None:
        return self.values.get(name)


def test_rootfs_layout_writes_boot_and_data_into_the_rootfs_fstab_once(
    getvar_defaults, tmp_path: Path
):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    # base-files' fstab, plus a BSP line for the same mount point we own
    (rootfs / "etc" / "fstab").write_text(
        "/dev/root / auto defaults 1 1\n/dev/sda9 /data ext4 defaults 0 0\n"
    )
    body = shell_function(IMAGE_CLASS, "pyupdate_rootfs_layout() {")
    body = body.replace(FSTAB_EXPR, board.fstab_text(getvar_defaults.get))
    values = {**getvar_defaults, "IMAGE_ROOTFS": str(rootfs), "sysconfdir": "/etc"}
    for _ in range(2):  # a second run (do_rootfs re-run) changes nothing
        result = run_shell(body, values)
        assert result.returncode == 0, result.stderr
    lines = [line.split() for line in (rootfs / "etc" / "fstab").read_text().splitlines()]
    assert lines == [
        ["/dev/root", "/", "auto", "defaults", "1", "1"],
        ["/dev/vda1", "/boot/uboot", "vfat", "defaults,sync", "0", "0"],
        ["/dev/vda4", "/data", "ext4", "defaults", "0", "0"],
    ]
    assert (rootfs / "boot" / "uboot").is_dir() and (rootfs / "data").is_dir()


def test_fstab_follows_the_board_variables(getvar_defaults):
    values = {
        **getvar_defaults,
        "PYUPDATE_STORAGE_DEVICE": "/dev/mmcblk0",
        "PYUPDATE_STORAGE_PART_SEPARATOR": "p",
        "PYUPDATE_BOOT_MOUNT_POINT": "/boot",
    }
    assert [line.split()[:2] for line in board.fstab_lines(values.get)] == [
        ["/dev/mmcblk0p1", "/boot"],
        ["/dev/mmcblk0p4", "/data"],
    ]


def test_fstab_matches_the_agent_config(getvar_defaults):
    """fw_env.config points into the boot mount; the slots are partitions 2 and 3."""
    conf = board.agent_config(getvar_defaults.get)
    disk = conf["RootfsPartA"][:-1]
    assert [line.split()[0] for line in board.fstab_lines(getvar_defaults.get)] == [
        f"{disk}1",
        f"{disk}4",
    ]


def test_rootfs_that_outgrows_the_slot_stops_do_image(tmp_path: Path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "big").write_bytes(b"\1" * (2 * 1024 * 1024))
    body = shell_function(IMAGE_CLASS, "pyupdate_check_rootfs_fits() {")
    values = {"IMAGE_ROOTFS": str(rootfs), "PYUPDATE_ROOTFS_PART_SIZE_MB": "1"}
    result = run_shell(body, values)
    assert result.returncode == 1
    err = result.stderr.strip()
    assert err.startswith("ERROR: PYUPDATE_ROOTFS_PART_SIZE_MB: the rootfs holds ")
    assert len(err.splitlines()) == 1
    assert run_shell(body, {**values, "PYUPDATE_ROOTFS_PART_SIZE_MB": "16"}).returncode == 0


def test_state_scripts_get_the_version_file_the_agent_requires(tmp_path: Path):
    image = tmp_path / "image"
    unpack = tmp_path / "sources"
    unpack.mkdir()
    name = "Download_Enter_10_hello"
    (unpack / name).write_text("#!/bin/sh\nexit 0\n")
    values = {
        "D": str(image),
        "PYUPDATE_STATE_SCRIPTS_DIR": "/etc/pyupdate/scripts",
        "PYUPDATE_STATE_SCRIPTS": name,
        "UNPACKDIR": str(unpack),
    }
    result = run_shell(shell_function(SCRIPTS_CLASS, "do_install:append() {"), values)
    assert result.returncode == 0, result.stderr
    scripts = image / "etc" / "pyupdate" / "scripts"
    runner = ScriptRunner([scripts], tmp_path / "artifact-scripts", ScriptSettings())
    with pytest.raises(ScriptError, match="no version file"):
        runner.find("Download", "Enter")
    # pyupdate-agent's do_install line, the package the class RDEPENDS on
    agent = AGENT_RECIPE.read_text()
    version_line = next(
        line for line in agent.splitlines() if "printf" in line and "scripts/version" in line
    )
    assert "printf '3\\n'" in version_line
    run_shell(version_line.strip(), {"D": str(image), "sysconfdir": "/etc"})
    assert [p.name for p in runner.find("Download", "Enter")] == [name]
    assert 'RDEPENDS:${PN} += "pyupdate-agent"' in SCRIPTS_CLASS.read_text()
    assert "${sysconfdir}/pyupdate/scripts/version" in agent


@pytest.mark.parametrize(("url", "enabled"), [("", "disable"), ("https://u.example", "enable")])
def test_unit_is_enabled_only_with_a_server_url(url: str, enabled: str):
    """An empty ServerURL daemon exits and is restarted every 10 s: do not enable it."""
    expr = inline_python(AGENT_RECIPE.read_text(), "SYSTEMD_AUTO_ENABLE:${PN}")
    assert eval(expr, {"d": FakeData({"PYUPDATE_SERVER_URL": url})}) == enabled


def test_agent_config_carries_server_cert_and_tenant_token(getvar_defaults):
    values = {
        **getvar_defaults,
        "PYUPDATE_SERVER_URL": "https://updates.example.com",
        "PYUPDATE_SERVER_CERT": "/keys/server.crt",
        "PYUPDATE_TENANT_TOKEN": "tok.en",
    }
    text = json.dumps(board.agent_config(values.get))
    config = parse_config(text, "pyupdate.conf")
    assert config.server_certificate == board.SERVER_CERT_PATH
    assert json.loads(text)["TenantToken"] == "tok.en"
    assert "ServerCertificate" not in board.agent_config(getvar_defaults.get)


def test_image_class_only_touches_updatable_images():
    full = (LAYER / "classes" / "pyupdate-full.bbclass").read_text()
    code = [line for line in full.splitlines() if line and not line.startswith("#")]
    for hard in ("WKS_FILE =", "IMAGE_BOOT_FILES =", "IMAGE_FSTYPES", "IMAGE_ROOTFS_SIZE"):
        assert not any(line.startswith(hard) for line in code), hard
    image = IMAGE_CLASS.read_text()
    assert 'IMAGE_BOOT_FILES:append = "' in image
    assert "WKS_FILE_DEPENDS ?=" in image
    for unused in ("syslinux", "grub-efi", "systemd-boot"):
        assert unused not in image.split("WKS_FILE_DEPENDS ?=")[1].splitlines()[0]
