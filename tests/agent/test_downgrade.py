"""Downgrade protection (docs/agent.md, "Downgrade protection"): an artifact whose `*.version`
provides are older than the device's is refused in one line, exit 8, unless AllowDowngrade."""

from __future__ import annotations

import pytest

from pyupdate_artifact.provides import compare_versions
from pyupdate_testing.host_device import PART_B

pytestmark = pytest.mark.uboot


@pytest.mark.parametrize(
    ("new", "running", "order"),
    [
        ("release-10", "release-9", 1),
        ("release-9", "release-10", -1),
        ("1.2.1", "1.2", 1),
        ("1.010", "1.10", 0),
        ("2024.03.1", "2024.10.0", -1),
        ("v2", "v2", 0),
        ("build-3", "release-2", None),  # different names: not comparable, never refused
        ("1.0", "1.0-rc1", -1),  # the longer is newer: no pre-release rule
        ("abc", "1", None),
    ],
)
def test_versions_compare_number_by_number(new: str, running: str, order: int | None) -> None:
    assert compare_versions(new, running) == order


def _installed(host, rootfs_artifact, name: str) -> None:
    assert host.cli("install", str(rootfs_artifact(name))) == 0
    assert host.boot() == PART_B
    assert host.cli("commit") == 0


def test_an_older_rootfs_version_is_refused_in_one_line(host, rootfs_artifact, capsys) -> None:
    _installed(host, rootfs_artifact, "release-10")
    env_before = host.env()
    capsys.readouterr()
    assert host.cli("install", str(rootfs_artifact("release-9"))) == 8
    err = capsys.readouterr().err
    assert err == (
        "error: artifact release-9 is older than the running software: rootfs-image.version"
        " release-9 < release-10 (set AllowDowngrade to install it)\n"
    )
    assert host.env() == env_before
    assert host.cli("install", str(rootfs_artifact("release-11"))) == 0  # newer: fine


def test_allow_downgrade_installs_the_older_version(host, rootfs_artifact) -> None:
    _installed(host, rootfs_artifact, "release-10")
    host.write_config(AllowDowngrade=True)
    assert host.cli("install", str(rootfs_artifact("release-9"))) == 0


def test_versions_that_cannot_be_compared_are_not_refused(host, rootfs_artifact) -> None:
    _installed(host, rootfs_artifact, "release-10")
    assert host.cli("install", str(rootfs_artifact("hotfix-1"))) == 0
