"""Fixtures for the agent's tests: a host-mode device, keys, cached artifacts.

The device itself is built by pyupdate_testing.host_device (shared with tests/interop and bench/).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyupdate_testing.host_device import DEVICE_TYPE, HostDevice, make_host, write_module_artifact


@pytest.fixture
def host(tmp_path: Path) -> HostDevice:
    if shutil.which("fw_setenv") is None or shutil.which("mkenvimage") is None:
        pytest.skip("needs libubootenv-tool and u-boot-tools")
    return make_host(tmp_path / "dev")


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path
    other_public: Path


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    for name in ("key", "other"):
        subprocess.run(
            [
                "openssl",
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-noout",
                "-out",
                str(d / f"{name}.pem"),
            ],
            check=True,
        )
        subprocess.run(
            [
                "openssl",
                "ec",
                "-in",
                str(d / f"{name}.pem"),
                "-pubout",
                "-out",
                str(d / f"{name}.pub"),
            ],
            check=True,
            capture_output=True,
        )
    return Keys(d / "key.pem", d / "key.pub", d / "other.pub")


ArtifactFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def rootfs_artifact(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> ArtifactFactory:
    """`rootfs_artifact(name, size=..., sign=True, extra=[...])` -> cached .mender path."""
    if shutil.which("mender-artifact") is None:
        pytest.skip("needs mender-artifact")
    cache: dict[tuple, Path] = {}
    d = tmp_path_factory.mktemp("artifacts")

    def make(
        name: str = "release-1",
        size: int = 1 << 20,
        sign: bool = True,
        device_type: str = DEVICE_TYPE,
        extra: tuple[str, ...] = (),
        random: bool = False,
    ) -> Path:
        key = (name, size, sign, device_type, extra, random)
        if key in cache:
            return cache[key]
        n = len(cache)
        image = d / f"img{n}.ext4"
        if random:
            image.write_bytes(os.urandom(size))
        else:
            image.write_bytes(hashlib.sha256(name.encode()).digest() * (size // 32))
        out = d / f"a{n}.mender"
        cmd = [
            "mender-artifact",
            "write",
            "rootfs-image",
            "-f",
            str(image),
            "-n",
            name,
            "-t",
            device_type,
            "-o",
            str(out),
            "--no-progress",
            *extra,
        ]
        if sign:
            cmd += ["-k", str(keys.private)]
        subprocess.run(cmd, check=True, capture_output=True)
        cache[key] = out
        return out

    return make


@pytest.fixture(scope="session")
def module_artifact(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> ArtifactFactory:
    """`module_artifact(type, files, name=..., meta=..., scripts=...)` -> .mender path."""
    if shutil.which("mender-artifact") is None:
        pytest.skip("needs mender-artifact")
    d = tmp_path_factory.mktemp("module-artifacts")
    count = [0]

    def make(payload_type: str, files: dict[str, bytes], sign: bool = True, **kw) -> Path:
        count[0] += 1
        key = keys.private if sign else None
        return write_module_artifact(d / f"m{count[0]}", payload_type, files, key=key, **kw)

    return make
