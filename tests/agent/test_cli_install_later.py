"""`pyupdate install --download-only`, then `install --resume` or `rollback` (docs/agent.md,
"Download now, install later"), on a host-mode device."""

from __future__ import annotations

import hashlib

import pytest

from pyupdate_agent.core.names import State
from pyupdate_agent.store import Store
from pyupdate_testing.host_device import PART_A, PART_B, HostDevice, sha256

pytestmark = pytest.mark.uboot

TRACE = '#!/bin/sh\necho {name} >> "{trace}"\n'
SCRIPTS = ("Download_Enter_00", "Download_Leave_00")
ARTIFACT_SCRIPTS = ("ArtifactInstall_Enter_00", "ArtifactInstall_Leave_00")


def _record(host: HostDevice):
    store = Store.open(host.data, create=False)
    assert store is not None
    try:
        return store.load(), store.history()
    finally:
        store.close()


def _image(name: str, size: int = 1 << 20) -> bytes:
    return hashlib.sha256(name.encode()).digest() * (size // 32)


@pytest.fixture
def traced(host: HostDevice, tmp_path):
    """Download_* scripts in the rootfs dir, ArtifactInstall_* in the artifact: each
    appends its name to a trace file."""
    trace = tmp_path / "trace"
    for name in SCRIPTS:
        (host.etc_scripts / name).write_text(TRACE.format(name=name, trace=trace))
        (host.etc_scripts / name).chmod(0o755)
    (host.etc_scripts / "version").write_text("3")
    extra: list[str] = []
    for name in ARTIFACT_SCRIPTS:
        path = tmp_path / name
        path.write_text(TRACE.format(name=name, trace=trace))
        path.chmod(0o755)
        extra += ["-s", str(path)]
    return trace, tuple(extra)


def test_download_only_writes_the_slot_and_leaves_the_env_then_resume_installs(
    host, rootfs_artifact, traced, capsys
):
    trace, extra = traced
    art = rootfs_artifact("release-later", extra=extra)
    env_before, slot_a = host.env(), sha256(host.slot_a)
    assert host.cli("install", "--download-only", str(art)) == 0
    out = capsys.readouterr().out
    assert out.startswith("downloaded release-later: run 'pyupdate install --resume'")
    assert host.slot_b.read_bytes()[: 1 << 20] == _image("release-later")
    assert host.env() == env_before  # no bootloader change
    assert trace.read_text().split() == list(SCRIPTS)  # ArtifactInstall's wait for --resume
    record, _ = _record(host)
    assert record.state is State.DOWNLOADED and record.update.phase == "downloaded"

    assert host.boot() == PART_A  # a reboot (or a power cut) keeps it waiting
    assert host.cli("show-update") == 0
    shown = capsys.readouterr().out
    assert "state=Downloaded\n" in shown and "artifact_name=release-later\n" in shown
    assert "waits_for=pyupdate install --resume\n" in shown

    assert host.cli("install", "--resume") == 0
    assert "run 'pyupdate commit'" in capsys.readouterr().out
    assert trace.read_text().split() == [*SCRIPTS, *ARTIFACT_SCRIPTS]
    env = host.env()
    assert (env["mender_boot_part"], env["upgrade_available"]) == (str(PART_B), "1")
    assert host.boot() == PART_B
    assert host.cli("commit") == 0
    capsys.readouterr()
    host.cli("show-artifact")
    assert capsys.readouterr().out == "release-later\n"
    assert sha256(host.slot_a) == slot_a
    assert host.cli("show-update") == 0 and capsys.readouterr().out == ""


def test_rollback_drops_a_downloaded_update_without_touching_the_env(host, rootfs_artifact, capsys):
    env_before = host.env()
    assert host.cli("install", "--download-only", str(rootfs_artifact("release-drop"))) == 0
    capsys.readouterr()
    assert host.cli("rollback") == 0
    assert capsys.readouterr().out == "dropped the download of release-drop\n"
    assert host.env() == env_before
    record, history = _record(host)
    assert record is None
    assert (history[-1].artifact_name, history[-1].result) == ("release-drop", "rolled back")
    assert host.cli("install", "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_a_module_download_waits_and_resume_runs_artifact_install(
    host, module_artifact, tmp_path, capsys
):
    calls = tmp_path / "calls"
    module = host.modules / "later"
    module.write_text(f'#!/bin/sh\necho "$1" >> {calls}\nexit 0\n')
    module.chmod(0o755)
    art = module_artifact("later", {"f": b"x"}, name="mod-later")
    assert host.cli("install", "--download-only", str(art)) == 0
    assert "ArtifactInstall" not in calls.read_text().split()
    assert host.cli("install", "--resume") == 0  # no rollback support: committed at once
    assert "ArtifactInstall" in calls.read_text().split()
    capsys.readouterr()
    host.cli("show-artifact")
    assert capsys.readouterr().out == "mod-later\n"


@pytest.mark.parametrize(
    "argv",
    [("install", "--resume", "x.mender"), ("install",), ("install", "--resume", "--download-only")],
)
def test_install_options_that_do_not_go_together_are_a_usage_error(host, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        host.cli(*argv)
    assert exc.value.code == 2
    assert "install: give ARTIFACT|URL" in capsys.readouterr().err


def test_a_second_install_or_a_commit_while_a_download_waits_is_refused_in_one_line(
    host, rootfs_artifact, capsys
):
    assert host.cli("install", "--download-only", str(rootfs_artifact("release-w"))) == 0
    capsys.readouterr()
    for argv in (("install", str(rootfs_artifact("release-x"))),
                 ("install", "--download-only", str(rootfs_artifact("release-x"))),
                 ("commit",)):  # fmt: skip
        assert host.cli(*argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "release-w" in err and "install --resume" in err
    record, _ = _record(host)
    assert record.state is State.DOWNLOADED  # still waits, untouched


def test_resume_of_an_installed_update_is_refused(host, rootfs_artifact, capsys):
    assert host.cli("install", str(rootfs_artifact("release-i"))) == 0
    capsys.readouterr()
    assert host.cli("install", "--resume") == 1
    assert "already installed: commit or roll back" in capsys.readouterr().err
