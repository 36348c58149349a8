"""Signing an existing artifact (resign.py): add or replace manifest.sig, payload untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from artifact_helpers import files_in, outer_members

from pyupdate_artifact.errors import FormatError, InputError
from pyupdate_artifact.reader import read_artifact
from pyupdate_artifact.verify import load_verifier
from pyupdate_host.resign import sign_artifact
from pyupdate_host.sign import load_signer


@pytest.fixture
def unsigned(tmp_path: Path, cli) -> Path:
    image = tmp_path / "rootfs.ext4"
    image.write_bytes(os.urandom(2 << 20) + bytes(1 << 20))
    out = tmp_path / "u.mender"
    assert cli("write", "rootfs-image", "-n", "r1", "-t", "d", "-f", image, "-o", out).rc == 0
    return out


def _payload_blob(path: Path) -> bytes:
    return dict(outer_members(path.read_bytes()))["data/0000.tar.gz"]


@pytest.mark.parametrize("key", ["rsa3072", "ec", "rsa2048-pkcs8", "ec-pkcs8"])
def test_signing_an_unsigned_artifact_keeps_the_payload_bytes(unsigned: Path, keys, key: str):
    out = unsigned.with_name("s.mender")
    sign_artifact(unsigned, out, load_signer(keys[key].private))
    assert _payload_blob(out) == _payload_blob(unsigned)
    before, after = outer_members(unsigned.read_bytes()), outer_members(out.read_bytes())
    assert [n for n, _ in after] == [
        "version",
        "manifest",
        "manifest.sig",
        "header.tar.gz",
        "data/0000.tar.gz",
    ]
    assert after[1] == before[1] and after[3] == before[2]
    header = read_artifact(out, verify_keys=[load_verifier(keys[key].public)])
    assert header.signature_verified


def test_replacing_a_signature_in_place(unsigned: Path, keys):
    sign_artifact(unsigned, unsigned, load_signer(keys["rsa2048"].private))
    payload = _payload_blob(unsigned)
    sign_artifact(unsigned, unsigned, load_signer(keys["ec"].private))
    assert _payload_blob(unsigned) == payload
    read_artifact(unsigned, verify_keys=[load_verifier(keys["ec"].public)])
    with pytest.raises(Exception, match=r"does not verify"):
        read_artifact(unsigned, verify_keys=[load_verifier(keys["rsa2048"].public)])
    assert files_in(unsigned.parent) == {"rootfs.ext4", "u.mender"}


def test_signing_the_shifted_layout_and_other_compressions(tmp_path: Path, cli, keys):
    image = tmp_path / "img"
    image.write_bytes(b"abc" * 1000)
    for compression in ("none", "lzma", "zstd"):
        out = tmp_path / f"{compression}.mender"
        assert (
            cli(
                "write",
                "module-image",
                "-T",
                "t",
                "-n",
                "n",
                "-t",
                "d",
                "-f",
                image,
                "-o",
                out,
                "--compression",
                compression,
            ).rc
            == 0
        )
        sign_artifact(out, out, load_signer(keys["ec"].private))
        header = read_artifact(out, verify_keys=[load_verifier(keys["ec"].public)])
        assert header.compression == compression


def test_a_corrupt_artifact_is_not_signed(unsigned: Path, keys):
    data = bytearray(unsigned.read_bytes())
    start = data.index(b"header.tar.gz\0")
    data[start + 512 + 100] ^= 0xFF  # inside the header blob: its checksum no longer matches
    bad = unsigned.with_name("bad.mender")
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError):
        sign_artifact(bad, unsigned.with_name("out.mender"), load_signer(keys["ec"].private))
    assert not unsigned.with_name("out.mender").exists()


def test_a_missing_input_is_an_input_error(tmp_path: Path, keys):
    with pytest.raises(InputError):
        sign_artifact(
            tmp_path / "nope.mender", tmp_path / "o.mender", load_signer(keys["ec"].private)
        )
    assert files_in(tmp_path) == set()
