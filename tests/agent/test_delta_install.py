"""`pyupdate install DELTA.mender` (payloads/delta.py): the delta applied from the running
slot into the other one, or refused with nothing written (docs/agent.md, "Delta updates").

Each test first installs and commits release-1 (OLD) the full way, so slot B runs OLD
and the provides hold its `rootfs-image.checksum`; the delta (release-2 from release-1,
made by pyupdate_host.delta.make_delta) then writes slot A.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pyupdate_agent.store import Store
from pyupdate_testing.fake_device_api import LocalHTTP, cut_every_answer
from pyupdate_testing.host_device import DEVICE_TYPE, PART_A, PART_B, HostDevice

pytestmark = pytest.mark.uboot


def env_bytes(host: HostDevice) -> bytes:
    return (host.root / "env.a").read_bytes() + (host.root / "env.b").read_bytes()


def run_old(host: HostDevice, delta_set) -> None:
    """release-1 installed, booted and committed: slot B runs OLD."""
    assert host.cli("install", str(delta_set.old)) == 0
    assert host.boot() == PART_B
    assert host.cli("commit") == 0


def provides(host: HostDevice) -> dict[str, str]:
    out = host.run("show-provides").stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def refused(host: HostDevice, capsys, art: Path, code: int | None, *words: str) -> str:
    """Install `art`: refused with one line holding `words`, exit `code` (None: any but 0),
    the env byte for byte as it was and nothing in flight; returns the line."""
    env_before = env_bytes(host)
    capsys.readouterr()
    rc = host.cli("install", str(art))
    err = capsys.readouterr().err
    assert rc != 0 if code is None else rc == code, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err
    assert env_bytes(host) == env_before
    store = Store.open(host.data, create=False)
    assert store is not None
    try:
        assert store.inflight() is None
        assert store.history()[-1].result == "failure"
    finally:
        store.close()
    assert host.boot() == PART_B  # the device still boots OLD
    return err


def test_delta_install_writes_exactly_new_then_commits(host, delta_set, capsys):
    run_old(host, delta_set)
    assert provides(host)["rootfs-image.checksum"] == delta_set.old_sha()
    capsys.readouterr()
    assert host.cli("install", str(delta_set.delta)) == 0
    assert "installed release-2" in capsys.readouterr().out
    new = delta_set.new_image.read_bytes()
    assert host.slot_a.read_bytes()[: len(new)] == new
    env = host.env()
    assert env["mender_boot_part"] == str(PART_A) and env["upgrade_available"] == "1"
    assert host.boot() == PART_A
    assert host.cli("commit") == 0
    after = provides(host)
    assert after["artifact_name"] == "release-2"
    assert after["rootfs-image.checksum"] == delta_set.new_sha()
    assert after["rootfs-image.version"] == "release-2"
    assert host.env()["upgrade_available"] == "0"


def test_delta_download_only_then_resume(host, delta_set):
    """The written delta waits like a full download; --resume and commit rebuild a plain
    rootfs installer from the record."""
    run_old(host, delta_set)
    env_before = env_bytes(host)
    assert host.cli("install", "--download-only", str(delta_set.delta)) == 0
    assert env_bytes(host) == env_before
    new = delta_set.new_image.read_bytes()
    assert host.slot_a.read_bytes()[: len(new)] == new
    assert host.cli("install", "--resume") == 0
    assert host.boot() == PART_A
    assert host.cli("commit") == 0
    assert provides(host)["rootfs-image.checksum"] == delta_set.new_sha()


def test_delta_url_install_resumes_a_cut_download_where_it_stopped(host, delta_set):
    """The connection drops halfway through the delta: the agent asks for the rest with
    Range and the applier goes on from the same place, with nothing fetched twice."""
    run_old(host, delta_set)
    blob = delta_set.delta.read_bytes()
    cut = _delta_offset(blob) + (len(blob) - _delta_offset(blob)) // 2  # inside the payload
    with LocalHTTP(cut_every_answer(blob, cut, resumes_too=False)) as server:
        assert host.cli("install", f"{server.url}/release-2.mender") == 0
        ranges = [s.headers.get("range") for s in server.seen]
    assert ranges == [None, f"bytes={cut}-"]
    new = delta_set.new_image.read_bytes()
    assert host.slot_a.read_bytes()[: len(new)] == new
    assert host.boot() == PART_A
    assert host.cli("commit") == 0
    assert provides(host)["rootfs-image.checksum"] == delta_set.new_sha()


def test_delta_on_a_modified_base_is_refused_before_the_new_slot_is_written(
    host, delta_set, capsys
):
    """A rw-mounted ext4 changes its superblock: one byte of the running slot differs."""
    run_old(host, delta_set)
    with open(host.slot_b, "r+b") as slot:
        slot.seek(1024 + 44)  # ext4's s_mtime, say
        slot.write(b"\x01\x02\x03\x04")
    slot_a = host.slot_a.read_bytes()
    err = refused(
        host, capsys, delta_set.delta, 9, "base does not match the delta", "install the full"
    )
    assert err.rstrip().endswith("install the full artifact"), err
    assert host.slot_a.read_bytes() == slot_a, "the inactive slot was written"
    assert provides(host)["artifact_name"] == "release-1"


def test_delta_whose_base_the_provides_do_not_name_is_refused(host, delta_set, capsys):
    """A device that never had a full install knows no checksum: the depends fail (8)."""
    slot_b = host.slot_b.read_bytes()
    env_before = env_bytes(host)
    capsys.readouterr()
    assert host.cli("install", str(delta_set.delta)) == 8
    err = capsys.readouterr().err
    assert "rootfs-image.checksum" in err and err.count("\n") == 1, err
    assert host.slot_b.read_bytes() == slot_b
    assert env_bytes(host) == env_before


def test_base_read_error_is_one_line_and_nothing_written(host, delta_set, capsys, monkeypatch):
    run_old(host, delta_set)
    slot_a = host.slot_a.read_bytes()

    def failing_pread(fd: int, size: int, offset: int) -> bytes:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    # os.pread is the applier's only way to read the base (the slot writer uses writev)
    monkeypatch.setattr(os, "pread", failing_pread)
    refused(host, capsys, delta_set.delta, 9, "base slot read failed at offset 0")
    assert host.slot_a.read_bytes() == slot_a


def _delta_offset(data: bytes) -> int:
    at = data.find(b"PUDELTA\n")
    assert at > 0
    return at


def _delta_size(data: bytes) -> int:
    """The size of rootfs.delta, from its tar header (uncompressed payload)."""
    header = data[_delta_offset(data) - 512 : _delta_offset(data)]
    return int(header[124:136].rstrip(b"\0 "), 8)


def test_corrupt_delta_is_one_line_and_the_env_untouched(host, delta_set, capsys, tmp_path):
    run_old(host, delta_set)
    data = bytearray(delta_set.delta.read_bytes())
    data[_delta_offset(data) + 200] ^= 0xFF  # inside the first segment's streams
    bad = tmp_path / "corrupt.mender"
    bad.write_bytes(bytes(data))
    refused(host, capsys, bad, None)


def test_truncated_delta_is_one_line_and_the_env_untouched(host, delta_set, capsys, tmp_path):
    run_old(host, delta_set)
    data = delta_set.delta.read_bytes()
    bad = tmp_path / "short.mender"
    bad.write_bytes(data[: _delta_offset(data) + (len(data) - _delta_offset(data)) // 2])
    refused(host, capsys, bad, 6)


def test_delta_without_its_base_checksum_is_refused_before_anything_is_recorded(
    host, delta_set, capsys, tmp_path
):
    """A `pyupdate-delta` payload whose type-info has no rootfs-image.checksum depends
    (written here by mender-artifact, which checks nothing of the kind)."""
    run_old(host, delta_set)
    payload = tmp_path / "rootfs.delta"
    payload.write_bytes(b"PUDELTA\n" + bytes(200))
    art = tmp_path / "no-depends.mender"
    subprocess.run(
        ["mender-artifact", "write", "module-image", "-T", "pyupdate-delta", "-f", str(payload),
         "-n", "release-2", "-t", DEVICE_TYPE, "-o", str(art), "--compression", "none",
         "--provides", f"rootfs-image.checksum:{delta_set.new_sha()}"],
        check=True, capture_output=True,
    )  # fmt: skip
    slot_a = host.slot_a.read_bytes()
    refused(host, capsys, art, 6, "no rootfs-image.checksum in its type-info depends")
    assert host.slot_a.read_bytes() == slot_a


@pytest.mark.slow
def test_kill_during_the_delta_write_then_install_again(host, delta_set):
    """A power cut while the delta writes slot A: the env still boots OLD (slot B), and the
    next install starts the delta over from the same, untouched base."""
    run_old(host, delta_set)
    env_before = env_bytes(host)
    fifo = host.root / "artifact.fifo"
    os.mkfifo(fifo)
    proc = host.popen("install", str(fifo))
    data = delta_set.delta.read_bytes()
    with open(fifo, "wb") as f:
        # all but the end marker: the segments are applied, slot A is being written
        f.write(data[: _delta_offset(data) + _delta_size(data) - 40])
        f.flush()
        deadline = time.monotonic() + 30
        while _phase(host) != "download":
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    fifo.unlink()
    assert env_bytes(host) == env_before
    assert host.boot() == PART_B
    result = host.run("install", str(delta_set.delta))
    assert result.returncode == 0, result.stderr
    assert (
        hashlib.sha256(host.slot_a.read_bytes()[: delta_set.new_image.stat().st_size]).hexdigest()
        == delta_set.new_sha()
    )
    assert host.boot() == PART_A
    assert host.run("commit").returncode == 0


def _phase(host: HostDevice) -> str | None:
    store = Store.open(host.data, create=False)
    if store is None:
        return None
    try:
        update = store.inflight()
        return None if update is None else str(update.phase)
    finally:
        store.close()
