"""`pyupdate install | commit | rollback` on a host-mode device (docs/agent.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pyupdate_agent.store import Store
from pyupdate_testing.fake_device_api import LocalHTTP, cut_every_answer
from pyupdate_testing.host_device import PART_A, PART_B, HostDevice, sha256

pytestmark = pytest.mark.uboot


def history(host: HostDevice) -> list:
    store = Store.open(host.data, create=False)
    assert store is not None
    try:
        return store.history()
    finally:
        store.close()


def test_install_writes_inactive_slot_and_switches_env(host, rootfs_artifact, capsys):
    art = rootfs_artifact("release-1")
    a_before = sha256(host.slot_a)
    assert host.cli("install", str(art)) == 0
    env = host.env()
    assert env["mender_boot_part"] == str(PART_B)
    assert env["mender_boot_part_hex"] == f"{PART_B:X}"
    assert env["upgrade_available"] == "1"
    assert env["bootcount"] == "0"
    assert sha256(host.slot_a) == a_before
    image_len = 1 << 20
    assert host.slot_b.read_bytes()[:image_len] == (
        __import__("hashlib").sha256(b"release-1").digest() * (image_len // 32)
    )
    assert "reboot" in capsys.readouterr().out


def test_install_reboot_exit_code_is_4(host, rootfs_artifact):
    assert host.cli("install", "--reboot-exit-code", str(rootfs_artifact("release-1"))) == 4


def test_commit_after_trial_boot_makes_update_permanent(host, rootfs_artifact, capsys):
    host.cli("install", str(rootfs_artifact("release-1")))
    assert host.boot() == PART_B
    assert host.cli("commit") == 0
    env = host.env()
    assert env["upgrade_available"] == "0"
    assert env["mender_boot_part"] == str(PART_B)
    capsys.readouterr()
    assert host.cli("show-artifact") == 0
    assert capsys.readouterr().out == "release-1\n"
    host.cli("show-provides")
    out = capsys.readouterr().out
    assert "artifact_name=release-1\n" in out
    assert "rootfs-image.version=release-1\n" in out
    assert history(host)[-1].result == "success"


def test_commit_before_reboot_is_refused_and_keeps_update_pending(host, rootfs_artifact, capsys):
    host.cli("install", str(rootfs_artifact("release-1")))
    assert host.cli("commit") == 1
    assert "reboot into slot B first" in capsys.readouterr().err
    assert host.env()["upgrade_available"] == "1"
    host.boot()
    assert host.cli("commit") == 0


def test_second_install_goes_back_to_slot_a(host, rootfs_artifact):
    host.cli("install", str(rootfs_artifact("release-1")))
    host.boot()
    host.cli("commit")
    b_after = sha256(host.slot_b)
    assert host.cli("install", str(rootfs_artifact("release-2"))) == 0
    assert host.env()["mender_boot_part"] == str(PART_A)
    assert sha256(host.slot_b) == b_after


def test_bootloader_rollback_is_recorded_as_failure(host, rootfs_artifact, capsys):
    host.cli("install", str(rootfs_artifact("release-1")))
    host.boot()  # trial boot of B fails to come up ...
    assert host.boot() == PART_A  # ... the next boot exceeds bootlimit and goes back
    capsys.readouterr()
    assert host.cli("commit") == 1
    assert "bootloader rolled back to slot A" in capsys.readouterr().err
    assert host.cli("show-artifact") == 0
    assert capsys.readouterr().out == "unknown\n"
    assert history(host)[-1].result == "failure"
    assert host.cli("commit") == 2  # nothing in progress any more


def test_rollback_before_reboot_restores_env(host, rootfs_artifact):
    host.cli("install", str(rootfs_artifact("release-1")))
    assert host.cli("rollback") == 0
    env = host.env()
    assert env["mender_boot_part"] == str(PART_A)
    assert env["upgrade_available"] == "0"
    assert host.boot() == PART_A
    assert history(host)[-1].result == "rolled back"


def test_rollback_after_trial_boot_returns_to_old_slot(host, rootfs_artifact):
    host.cli("install", str(rootfs_artifact("release-1")))
    host.boot()
    assert host.cli("rollback") == 0
    assert host.boot() == PART_A


def test_commit_and_rollback_without_update_exit_2(host, capsys):
    assert host.cli("commit") == 2
    assert host.cli("rollback") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "nothing to" in err


def test_install_while_update_pending_is_refused(host, rootfs_artifact, capsys):
    host.cli("install", str(rootfs_artifact("release-1")))
    assert host.cli("install", str(rootfs_artifact("release-2"))) == 1
    assert "in progress" in capsys.readouterr().err
    assert host.env()["mender_boot_part"] == str(PART_B)


def test_show_artifact_reads_artifact_info_then_store(host, rootfs_artifact, capsys):
    (host.root / "artifact_info").write_text("artifact_name=factory-image\n")
    host.cli("show-artifact")
    assert capsys.readouterr().out == "factory-image\n"
    host.cli("install", str(rootfs_artifact("release-1")))
    capsys.readouterr()
    host.cli("show-artifact")  # not committed yet: still the old one
    assert capsys.readouterr().out == "factory-image\n"


def test_show_artifact_unknown_without_store_or_info(host, capsys):
    assert host.cli("show-artifact") == 0
    assert capsys.readouterr().out == "unknown\n"


def test_grub_backend_install_boot_commit(host, rootfs_artifact):
    host.write_config(Bootloader="grub")
    assert host.cli("install", str(rootfs_artifact("release-1"))) == 0
    assert host.boot() == PART_B
    assert host.cli("commit") == 0
    from pyupdate_testing.bootloader_sim import grub_env

    env = grub_env(host.grubenv)
    assert env["mender_boot_part"] == str(PART_B) and env["upgrade_available"] == "0"


def test_grub_backend_rolls_back_after_failed_trial(host, rootfs_artifact):
    host.write_config(Bootloader="grub")
    host.cli("install", str(rootfs_artifact("release-1")))
    host.boot()
    assert host.boot() == PART_A
    assert host.cli("commit") == 1
    assert history(host)[-1].result == "failure"


def test_deployment_log_holds_the_phases(host, rootfs_artifact):
    host.cli("install", str(rootfs_artifact("release-1")))
    logs = sorted(host.data.glob("deployments.*.log"))
    assert len(logs) == 1
    states = [json.loads(line).get("state") for line in logs[0].read_text().splitlines()]
    phases = [s for s in states if s is not None]
    assert phases.index("download") < phases.index("install") < phases.index("installed")


def test_show_commands_start_without_the_installers_tls_or_crypto(host):
    """Inventory and state scripts call `show-artifact` often; on a slow device every
    import is time. The show verbs load config and store, not the update machinery."""
    probe = (
        "import sys; from pyupdate_agent.cli import main; "
        f"rc = main({host.argv('show-provides')!r}); "
        "heavy = {'pyupdate_artifact.reader', 'pyupdate_agent.install', 'pyupdate_agent.device', "
        "'ssl', 'cryptography', 'urllib.request'}; "
        "print(rc, sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] == "0 []", out.stdout + out.stderr


# -- install URL: the daemon's download (download.py), its resumes and its limits ---------


def test_url_install_resumes_a_cut_stream_and_completes(host, rootfs_artifact):
    blob = rootfs_artifact("release-1", size=4 << 20).read_bytes()
    cut = len(blob) // 2
    with LocalHTTP(cut_every_answer(blob, cut, resumes_too=False)) as server:
        assert host.cli("install", f"{server.url}/release-1.mender") == 0
        ranges = [s.headers.get("range") for s in server.seen]
    assert ranges == [None, f"bytes={cut}-"]  # only the missing bytes crossed again
    assert host.env()["mender_boot_part"] == str(PART_B)
    assert host.boot() == PART_B
    assert host.cli("commit") == 0


def test_url_install_resumes_within_the_daemons_limits(host, rootfs_artifact, capsys):
    """DownloadMaxResumes bounds `install URL` as it bounds the daemon; a download that
    cannot finish exits 5 (the artifact cannot be read) with the boot env untouched."""
    host.write_config(DownloadMaxResumes=1)
    env_before = host.env()
    blob = rootfs_artifact("release-1").read_bytes()
    with LocalHTTP(cut_every_answer(blob, len(blob) // 4, resumes_too=True)) as server:
        rc = host.cli("install", f"{server.url}/release-1.mender")
        requests = len(server.seen)
    lines = capsys.readouterr().err.splitlines()
    assert rc == 5, lines
    assert [line.split(":")[0] for line in lines] == ["warning", "error"]  # the resume, the end
    assert lines[-1].startswith("error: download failed after 1 resumes: connection closed")
    assert requests == 2
    assert host.env() == env_before
    assert history(host)[-1].result == "failure"


def _deep_header_artifact(path):
    """An unsigned artifact whose header-info nests 100,000 deep (issue 16)."""
    import hashlib
    import io
    import tarfile

    from pyupdate_artifact.format.version import VERSION_BYTES
    from pyupdate_artifact.tarsafe import end_of_archive, member

    header_info = b'{"payloads":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    header = member("header-info", header_info) + end_of_archive()
    manifest = "".join(
        f"{hashlib.sha256(body).hexdigest()}  {name}\n"
        for name, body in (("header.tar", header), ("version", VERSION_BYTES))
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, body in (
            ("version", VERSION_BYTES),
            ("manifest", manifest),
            ("header.tar", header),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    path.write_bytes(out.getvalue())
    return path


def test_install_of_deeply_nested_header_json_is_invalid_not_internal(host, tmp_path, capsys):
    art = _deep_header_artifact(tmp_path / "deep.mender")
    capsys.readouterr()
    assert host.cli("install", str(art)) == 6  # Exit.INVALID, as every format error
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].endswith("header-info: JSON nests deeper than 32 levels"), err
    assert host.env()["upgrade_available"] == "0"
