"""Fixtures for the agent's tests: a host-mode device, keys, cached artifacts.

The device itself is built by pyupdate_testing.host_device (shared with tests/interop and bench/).
"""

from __future__ import annotations

import hashlib
import os
import random
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


@dataclass(frozen=True)
class DeltaSet:
    """OLD and NEW images, their full artifacts, and the delta from OLD to NEW."""

    old_image: Path
    new_image: Path
    old: Path
    new: Path
    delta: Path

    def old_sha(self) -> str:
        return hashlib.sha256(self.old_image.read_bytes()).hexdigest()

    def new_sha(self) -> str:
        return hashlib.sha256(self.new_image.read_bytes()).hexdigest()


def changed_image(old: bytes, seed: int = 1) -> bytes:
    """`old` with what an update does to a filesystem: a few blocks rewritten, a file's
    bytes shifted, new data at the end."""
    rng = random.Random(seed)
    new = bytearray(old)
    for _ in range(8):
        at = rng.randrange(0, len(old) - 8192)
        new[at : at + rng.randrange(16, 8192)] = rng.randbytes(rng.randrange(16, 8192))
    at = len(new) // 2
    new[at:at] = rng.randbytes(3000)  # a shift
    return bytes(new + rng.randbytes(64 << 10))


@pytest.fixture(scope="session")
def delta_set(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> DeltaSet:
    """release-1 (OLD), release-2 (NEW, full) and release-2 as a delta from release-1,
    made by `pyupdate_host.delta.make_delta`; all signed with `keys.private`."""
    if shutil.which("mender-artifact") is None:
        pytest.skip("needs mender-artifact")
    from pyupdate_host.delta import make_delta
    from pyupdate_host.sign import load_signer

    d = tmp_path_factory.mktemp("delta")
    rng = random.Random(19)
    old = rng.randbytes(768 << 10) + bytes(256 << 10)  # data, then free (zeroed) blocks
    images = {"release-1": old, "release-2": changed_image(old)}
    arts = {}
    for name, data in images.items():
        (d / f"{name}.ext4").write_bytes(data)
        arts[name] = d / f"{name}.mender"
        subprocess.run(
            ["mender-artifact", "write", "rootfs-image", "-f", str(d / f"{name}.ext4"), "-n",
             name, "-t", DEVICE_TYPE, "-o", str(arts[name]), "--no-progress",
             "-k", str(keys.private)],
            check=True, capture_output=True,
        )  # fmt: skip
    delta = d / "release-2.delta.mender"
    make_delta(arts["release-1"], arts["release-2"], delta, signer=load_signer(keys.private))
    return DeltaSet(
        d / "release-1.ext4", d / "release-2.ext4", arts["release-1"], arts["release-2"], delta
    )
