"""Building blocks for the artifact tests: keys, member-level artifacts, the CLI in-process.

Malformed artifacts are assembled here from their members (version, manifest,
header.tar.gz, data/0000.tar.gz), so a test can reorder, duplicate or corrupt
one member and still have every other check pass: the test then fails for the
reason it names, not for a stray checksum.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pyupdate_artifact import tarsafe
from pyupdate_artifact.format.version import VERSION_BYTES
from pyupdate_host.cli.main import main

HELLO = b"hello rootfs\n"
# mender-compat.md §1.10: what mender-artifact 3.9 writes for HELLO as rootfs.ext4.
HELLO_SHA = "b64e3179b9aa508d2aa57437c1e47ed505a24098bf18be3edf009510073b93d5"
VERSION_SHA = "96bcd965947569404798bcbdb614f103db5a004eb6e364cfc162c146890ea35b"
HEADER_INFO_1_10 = (
    b'{"payloads":[{"type":"rootfs-image"}],"artifact_provides":{"artifact_name":"release-1"},'
    b'"artifact_depends":{"device_type":["qemux86-64"]}}'
)
TYPE_INFO_1_10 = (
    b'{"type":"","artifact_provides":{"rootfs-image.checksum":'
    b'"b64e3179b9aa508d2aa57437c1e47ed505a24098bf18be3edf009510073b93d5",'
    b'"rootfs-image.version":"release-1"},'
    b'"clears_artifact_provides":["artifact_group","rootfs_image_checksum","rootfs-image.*"]}'
)


# --- running the CLI ---------------------------------------------------------
@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


def run_cli(capsys, *argv: str | Path) -> Result:
    """`pyupdate-artifact argv...` in-process; argparse exits become return codes."""
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as done:
        rc = done.code if isinstance(done.code, int) else 1
    captured = capsys.readouterr()
    return Result(rc, captured.out, captured.err)


def assert_one_error_line(result: Result, rc: int | None = None, contains: str = "") -> None:
    """Bad input: non-zero exit, exactly one `error:` line on stderr, no traceback."""
    assert result.rc != 0, result
    if rc is not None:
        assert result.rc == rc, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err
    assert "internal error" not in result.err, result.err
    assert contains in lines[0], (contains, lines[0])


# --- keys ----------------------------------------------------------------------
@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


def _write_pair(folder: Path, name: str, key, fmt) -> KeyPair:
    private = folder / f"{name}.key"
    public = folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(private, public)


def make_keys(folder: Path) -> dict[str, KeyPair]:
    """Every key kind the tests need, by name."""
    pkcs1 = serialization.PrivateFormat.TraditionalOpenSSL  # RSA: PKCS#1, EC: SEC1
    pkcs8 = serialization.PrivateFormat.PKCS8
    folder.mkdir(parents=True, exist_ok=True)
    keys = {}
    for bits in (2048, 3072, 4096):
        key = rsa.generate_private_key(65537, bits)
        keys[f"rsa{bits}"] = _write_pair(folder, f"rsa{bits}", key, pkcs1)
        keys[f"rsa{bits}-pkcs8"] = _write_pair(folder, f"rsa{bits}-pkcs8", key, pkcs8)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys["ec"] = _write_pair(folder, "ec", ec_key, pkcs1)
    keys["ec-pkcs8"] = _write_pair(folder, "ec-pkcs8", ec_key, pkcs8)
    keys["ec-other"] = _write_pair(
        folder, "ec-other", ec.generate_private_key(ec.SECP256R1()), pkcs1
    )
    keys["rsa-other"] = _write_pair(
        folder, "rsa-other", rsa.generate_private_key(65537, 2048), pkcs1
    )
    keys["rsa1024"] = _write_pair(folder, "rsa1024", rsa.generate_private_key(65537, 1024), pkcs1)
    keys["ec384"] = _write_pair(folder, "ec384", ec.generate_private_key(ec.SECP384R1()), pkcs8)
    keys["ed25519"] = _write_pair(folder, "ed25519", ed25519.Ed25519PrivateKey.generate(), pkcs8)
    return keys


# --- artifacts from members -----------------------------------------------------
def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tar_bytes(members: Sequence[tuple[str, bytes]], *, trailer: bool = True) -> bytes:
    """A plain tar written the way Go's archive/tar does (ustar, 1024-byte trailer)."""
    body = b"".join(tarsafe.member(name, data) for name, data in members)
    return body + (tarsafe.end_of_archive() if trailer else b"")


def compress(data: bytes, suffix: str) -> bytes:
    if suffix == ".gz":
        return gzip.compress(data, mtime=0)
    if suffix == ".xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    if suffix == ".zst":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


@dataclass
class Parts:
    """The members of a valid one-payload artifact, each replaceable before `build()`."""

    files: dict[str, bytes] = field(default_factory=lambda: {"rootfs.ext4": HELLO})
    suffix: str = ".gz"
    header_info: dict = field(
        default_factory=lambda: {
            "payloads": [{"type": "rootfs-image"}],
            "artifact_provides": {"artifact_name": "release-1"},
            "artifact_depends": {"device_type": ["qemux86-64"]},
        }
    )
    type_info: dict = field(default_factory=lambda: {"type": "rootfs-image"})
    meta_data: bytes | None = b""
    scripts: dict[str, bytes] = field(default_factory=dict)
    # raw overrides, used as given (no recomputation)
    header_members: list[tuple[str, bytes]] | None = None
    data_members: list[tuple[str, bytes]] | None = None

    def header_tar(self) -> bytes:
        members = self.header_members
        if members is None:
            members = [("header-info", json.dumps(self.header_info).encode())]
            members += [(f"scripts/{n}", b) for n, b in self.scripts.items()]
            members.append(("headers/0000/type-info", json.dumps(self.type_info).encode()))
            if self.meta_data is not None:
                members.append(("headers/0000/meta-data", self.meta_data))
        return compress(tar_bytes(members), self.suffix)

    def data_tar(self) -> bytes:
        members = self.data_members
        if members is None:
            members = list(self.files.items())
        return compress(tar_bytes(members), self.suffix)

    def members(self) -> list[tuple[str, bytes]]:
        header = self.header_tar()
        header_name = "header.tar" + self.suffix
        manifest = manifest_for(self.files, header_name, header)
        return [
            ("version", VERSION_BYTES),
            ("manifest", manifest),
            (header_name, header),
            ("data/0000.tar" + self.suffix, self.data_tar()),
        ]

    def build(self) -> bytes:
        return tar_bytes(self.members())


def manifest_for(files: dict[str, bytes], header_name: str, header: bytes) -> bytes:
    lines = [f"{sha(body)}  data/0000/{name}\n" for name, body in files.items()]
    lines.append(f"{sha(header)}  {header_name}\n")
    lines.append(f"{VERSION_SHA}  version\n")
    return "".join(lines).encode()


def outer_members(artifact: bytes) -> list[tuple[str, bytes]]:
    """(name, data) of each outer member, read with our own tar reader."""
    reader = tarsafe.TarReader(io.BytesIO(artifact), "test")
    found = []
    while (m := reader.next_member()) is not None:
        found.append((m.name, tarsafe.read_exact(reader, m.size, m.name)))
    return found


def inner_members(blob: bytes, suffix: str) -> list[tuple[str, bytes]]:
    if suffix == ".gz":
        blob = gzip.decompress(blob)
    elif suffix == ".xz":
        blob = lzma.decompress(blob)
    elif suffix == ".zst":
        import zstandard

        blob = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read()
    return outer_members(blob)


class Trickle(io.RawIOBase):
    """A non-seekable stream that returns at most `step` bytes per read, like a socket."""

    def __init__(self, data: bytes, step: int = 7777) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        out = self._data[self._pos : self._pos + size].tobytes()
        self._pos += len(out)
        self.consumed = self._pos
        return out

    def seek(self, *args):  # a socket cannot seek either
        raise io.UnsupportedOperation("not seekable")


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}
