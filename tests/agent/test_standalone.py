"""standalone.py and flow.py: module failures, recovery, and mender's commit rules."""

from __future__ import annotations

import pytest

from pyupdate_agent.store import Store
from pyupdate_testing.host_device import PART_A, PART_B, HostDevice

pytestmark = pytest.mark.uboot


def add_module(host: HostDevice, name: str, body: str) -> None:
    path = host.modules / name
    path.write_text("#!/bin/sh\n" + body + "\nexit 0\n")
    path.chmod(0o755)


def last_result(host: HostDevice) -> tuple[str, str]:
    store = Store.open(host.data, create=False)
    try:
        entry = store.history()[-1]
        return entry.result, entry.message
    finally:
        store.close()


def test_hanging_module_is_killed_and_recorded(host, module_artifact, capsys):
    host.write_config(ModuleTimeoutSeconds=1)
    add_module(host, "hang", '[ "$1" = ArtifactInstall ] && exec sleep 60')
    env_before = host.env()
    rc = host.cli("install", str(module_artifact("hang", {"f": b"x"})))
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "ArtifactInstall timed out" in err
    assert last_result(host)[0] == "failure"
    assert host.env() == env_before


def test_crashing_module_in_download_is_recorded(host, module_artifact, capsys):
    add_module(host, "crash", '[ "$1" = Download ] && kill -SEGV $$')
    rc = host.cli("install", str(module_artifact("crash", {"f": b"x" * 100_000})))
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Download failed" in err
    assert last_result(host)[0] == "failure"
    assert not (host.data / "modules" / "v3" / "payloads" / "0000").exists()


def test_missing_module_is_refused_before_anything(host, module_artifact, capsys):
    rc = host.cli("install", str(module_artifact("nosuchmodule", {"f": b"x"})))
    assert rc == 1 and "no update module" in capsys.readouterr().err
    assert last_result(host)[0] == "failure"


def test_commit_leave_failure_marks_name_inconsistent(host, module_artifact, capsys):
    add_module(host, "rb", '[ "$1" = SupportsRollback ] && echo Yes')
    art = module_artifact(
        "rb",
        {"f": b"x"},
        name="m-2",
        scripts={"ArtifactCommit_Leave_01": "#!/bin/sh\nexit 1\n"},
    )
    assert host.cli("install", str(art)) == 0
    assert host.cli("commit") == 0
    capsys.readouterr()
    host.cli("show-artifact")
    assert capsys.readouterr().out == "m-2_INCONSISTENT\n"


def test_commit_enter_failure_rolls_back(host, module_artifact, tmp_path):
    log = tmp_path / "calls"
    add_module(host, "rb", f'echo "$1" >> {log}; [ "$1" = SupportsRollback ] && echo Yes')
    art = module_artifact(
        "rb",
        {"f": b"x"},
        name="m-3",
        scripts={"ArtifactCommit_Enter_01": "#!/bin/sh\nexit 1\n"},
    )
    assert host.cli("install", str(art)) == 0
    assert host.cli("commit") == 1
    calls = log.read_text().split()
    assert calls[-4:] == ["SupportsRollback", "ArtifactRollback", "ArtifactFailure", "Cleanup"]
    assert last_result(host)[0] == "failure"


def test_retry_later_script_is_run_again_in_the_flow(host, rootfs_artifact, tmp_path):
    counter = tmp_path / "n"
    (host.etc_scripts / "version").write_text("3")
    script = host.etc_scripts / "Download_Enter_01"
    script.write_text(
        f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}\n"
        "[ $n -ge 2 ] || exit 21\n"
    )
    script.chmod(0o755)
    assert host.cli("install", str(rootfs_artifact("release-1"))) == 0
    assert counter.read_text().strip() == "2"


def test_failing_download_enter_refuses_install(host, rootfs_artifact, capsys):
    (host.etc_scripts / "version").write_text("3")
    script = host.etc_scripts / "Download_Enter_01"
    script.write_text("#!/bin/sh\nexit 1\n")
    script.chmod(0o755)
    env_before = host.env()
    assert host.cli("install", str(rootfs_artifact("release-1"))) == 1
    assert "Download_Enter_01" in capsys.readouterr().err
    assert host.env() == env_before


def test_install_after_bootloader_rollback_records_failure_then_installs(host, rootfs_artifact):
    host.cli("install", str(rootfs_artifact("release-1")))
    host.boot()
    assert host.boot() == PART_A  # the trial failed twice: back on A
    assert host.cli("install", str(rootfs_artifact("release-2"))) == 0
    store = Store.open(host.data, create=False)
    results = [(h.artifact_name, h.result) for h in store.history()]
    store.close()
    assert results == [("release-1", "failure")]
    assert host.env()["mender_boot_part"] == str(PART_B)


def test_env_already_on_trial_is_refused(host, rootfs_artifact, capsys):
    from pyupdate_testing.bootloader_sim import uboot_set

    uboot_set(host.fw_env_config, {"upgrade_available": "1"})
    assert host.cli("install", str(rootfs_artifact("release-1"))) == 1
    assert "on trial" in capsys.readouterr().err


def test_an_update_recorded_by_an_older_agent_resumes_from_its_phase(host, rootfs_artifact):
    """A store of schema 0 (no machine row) mid-install: the next command rolls it back."""
    import sqlite3

    assert host.cli("install", str(rootfs_artifact("release-1"))) == 0
    db = sqlite3.connect(host.data / "pyupdate-store.sqlite")
    db.executescript(
        "DROP TABLE machine; PRAGMA user_version = 0; UPDATE inflight SET phase = 'install'"
    )
    db.close()
    assert host.cli("rollback") == 0
    assert host.env()["mender_boot_part"] == str(PART_A)
    assert host.env()["upgrade_available"] == "0"
    assert last_result(host) == ("failure", "interrupted during install; rolled back")
