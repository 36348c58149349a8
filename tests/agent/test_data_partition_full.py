"""A full data partition: `pyupdate install` refuses in one line before touching slot or env.

The data dir is a real tmpfs of 1 MiB (needs root) filled to a few KiB, so SQLite meets
the kernel's ENOSPC; with room again the same install goes through.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_testing.full_disk import fill, tmpfs
from pyupdate_testing.host_device import INITIAL_ENV, HostDevice, sha256

pytestmark = [pytest.mark.root, pytest.mark.uboot]


@pytest.fixture
def full_data(host: HostDevice, tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "data-partition", "1m") as mnt:
        shutil.copytree(host.data, mnt / "data")
        shutil.rmtree(host.data)
        host.data.symlink_to(mnt / "data")
        yield mnt


@pytest.mark.parametrize("leave", [0, 8192, 65536])
def test_install_on_a_full_data_partition_fails_cleanly(host, full_data, rootfs_artifact, leave):
    artifact = rootfs_artifact("release-2")
    slot_b = sha256(host.slot_b)
    filler = fill(full_data, leave)

    result = host.run("install", str(artifact))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "KiB free in" in lines[0]
    assert host.env() == INITIAL_ENV
    assert sha256(host.slot_b) == slot_b

    filler.unlink()
    assert host.run("install", str(artifact)).returncode == 0
    assert host.env()["upgrade_available"] == "1"


def test_a_module_payload_that_fills_the_data_partition_fails_cleanly(
    host, full_data, module_artifact
):
    """ENOSPC while the agent writes a module's payload files (issue 16): one line, the
    update recorded as failed, and the partial files removed, so the partition is not
    left full until the next command."""
    module = host.modules / "files"
    module.write_text("#!/bin/sh\nexit 0\n")
    module.chmod(0o755)
    # random, so the artifact's compression cannot make it small: 600 KiB into ~400 free
    artifact = module_artifact("files", {"big.bin": os.urandom(600 * 1024)})
    filler = fill(full_data, 400 * 1024)
    free_before = shutil.disk_usage(full_data).free

    result = host.run("install", str(artifact))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "internal error" not in lines[0] and "No space left" in lines[0], lines[0]
    assert shutil.disk_usage(full_data).free >= free_before - 64 * 1024
    assert host.env() == INITIAL_ENV

    filler.unlink()
    assert host.run("install", str(artifact)).returncode == 0
