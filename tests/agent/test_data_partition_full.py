"""A full data partition: `pyupdate install` refuses in one line before touching slot or env.

The data dir is a real tmpfs of 1 MiB (needs root) filled to a few KiB, so SQLite meets
the kernel's ENOSPC; with room again the same install goes through.
"""

from __future__ import annotations

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
