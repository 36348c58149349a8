"""Temp dirs of several `serve` processes sharing one data dir: a start removes only
what exited servers left, never a live server's upload in flight."""

from __future__ import annotations

import os
import subprocess
import sys

from pyupdate_server.tmpdirs import claim, release


def test_a_start_keeps_a_live_servers_upload_and_removes_a_dead_ones(tmp_path):
    live, live_fd = claim(tmp_path)
    (live.path / "in-flight.upload").write_bytes(b"x")
    dead, dead_fd = claim(tmp_path)
    (dead.path / "left.upload").write_bytes(b"x")
    os.close(dead_fd)  # as a SIGKILL does: the lock goes, the files stay
    old_layout = tmp_path / "tmp" / "loose.upload"  # an older version staged uploads here
    old_layout.write_bytes(b"x")

    new, new_fd = claim(tmp_path)

    assert (live.path / "in-flight.upload").exists()
    assert not dead.path.exists() and not dead.lock.exists()
    assert not old_layout.exists()
    assert new.path.is_dir() and oct(new.path.stat().st_mode & 0o777) == "0o700"
    release(new, new_fd)
    release(live, live_fd)
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == [".start.lock"]


def test_a_dir_held_by_a_worker_outlives_its_parent(tmp_path):
    instance, held = claim(tmp_path)
    # a worker (another process) holds the lock too; the parent is gone
    worker = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY);"
         " fcntl.flock(fd, fcntl.LOCK_SH); print('held', flush=True); time.sleep(60)",
         str(instance.lock)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert worker.stdout is not None and worker.stdout.readline() == b"held\n"
        os.close(held)
        claim(tmp_path)
        assert instance.path.is_dir()
    finally:
        worker.kill()
        worker.wait()
    claim(tmp_path)
    assert not instance.path.exists()
