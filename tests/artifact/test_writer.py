"""One-pass writer (writer.py): every kind, compression and key; the reserved room and its slow path."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest
from artifact_helpers import (
    HEADER_INFO_1_10,
    HELLO,
    HELLO_SHA,
    VERSION_SHA,
    files_in,
    inner_members,
    outer_members,
)

from pyupdate_artifact.compression import by_id
from pyupdate_artifact.errors import InputError, OutputError
from pyupdate_artifact.format.version import VERSION_BYTES
from pyupdate_artifact.reader import read_artifact
from pyupdate_artifact.verify import load_verifier
from pyupdate_host.sign import load_signer
from pyupdate_host.writer import ArtifactSpec, PayloadSpec, write_artifact

SUFFIX = {"none": "", "gzip": ".gz", "lzma": ".xz", "zstd": ".zst"}


def _rootfs_spec(path: Path, compression: str = "gzip", **kwargs) -> ArtifactSpec:
    return ArtifactSpec(
        name="release-1",
        device_types=("qemux86-64",),
        compression=by_id(compression),
        payload=PayloadSpec(
            type="rootfs-image",
            files=(path,),
            provides={"rootfs-image.version": "release-1"},
            clears_provides=("artifact_group", "rootfs_image_checksum", "rootfs-image.*"),
            meta_data=b"",
            checksum_provide="rootfs-image.checksum",
        ),
        **kwargs,
    )


@pytest.mark.parametrize("compression", list(SUFFIX))
def test_rootfs_artifact_has_mender_artifacts_members_for_each_compression(
    tmp_path: Path, rootfs: Path, compression: str
):
    out = tmp_path / "a.mender"
    write_artifact(out, _rootfs_spec(rootfs, compression))
    suffix = SUFFIX[compression]
    members = dict(outer_members(out.read_bytes()))
    assert list(members) == ["version", "manifest", f"header.tar{suffix}", f"data/0000.tar{suffix}"]
    assert members["version"] == VERSION_BYTES
    header = members[f"header.tar{suffix}"]
    assert (
        members["manifest"]
        == (
            f"{HELLO_SHA}  data/0000/rootfs.ext4\n"
            f"{hashlib.sha256(header).hexdigest()}  header.tar{suffix}\n"
            f"{VERSION_SHA}  version\n"
        ).encode()
    )
    inner = inner_members(header, suffix)
    assert [n for n, _ in inner] == [
        "header-info",
        "headers/0000/type-info",
        "headers/0000/meta-data",
    ]
    assert inner[0][1] == HEADER_INFO_1_10
    type_info = json.loads(inner[1][1])
    assert type_info["type"] == "rootfs-image"
    assert type_info["artifact_provides"]["rootfs-image.checksum"] == HELLO_SHA
    assert inner[2][1] == b""
    assert inner_members(members[f"data/0000.tar{suffix}"], suffix) == [("rootfs.ext4", HELLO)]
    header_read = read_artifact(out)
    assert header_read.compression == compression
    assert header_read.payloads[0].files[0].size == len(HELLO)


def test_python_tarfile_reads_the_artifact_despite_the_pax_filler(tmp_path: Path, rootfs: Path):
    out = tmp_path / "a.mender"
    write_artifact(out, _rootfs_spec(rootfs))
    with tarfile.open(out) as tar:
        assert tar.getnames() == ["version", "manifest", "header.tar.gz", "data/0000.tar.gz"]
        assert all(m.isreg() for m in tar)


def test_payload_file_keeps_its_mode_and_header_members_are_0600(tmp_path: Path, rootfs: Path):
    rootfs.chmod(0o640)
    out = tmp_path / "a.mender"
    write_artifact(out, _rootfs_spec(rootfs, "none"))
    with tarfile.open(out) as outer:
        assert {m.name: m.mode for m in outer}["version"] == 0o600
        data = outer.extractfile("data/0000.tar")
        with tarfile.open(fileobj=data) as inner:
            assert inner.getmember("rootfs.ext4").mode == 0o640


def test_module_image_with_several_files_meta_data_and_scripts(tmp_path: Path):
    files = []
    for name, body in (("a.txt", b"A" * 1000), ("b.conf", b""), ("c.bin", os.urandom(3 << 20))):
        (tmp_path / name).write_bytes(body)
        files.append(tmp_path / name)
    scripts = []
    for name in ("ArtifactInstall_Enter_00", "ArtifactCommit_Leave_50_notify"):
        (tmp_path / name).write_bytes(b"#!/bin/sh\necho " + name.encode() + b"\n")
        (tmp_path / name).chmod(0o755)
        scripts.append(tmp_path / name)
    spec = ArtifactSpec(
        name="app-1.0",
        device_types=("devA", "devB"),
        compression=by_id("gzip"),
        group="grp1",
        depends_names=("release-0",),
        depends_groups=("grp0",),
        scripts=tuple(scripts),
        payload=PayloadSpec(
            type="single-file",
            files=tuple(files),
            provides={"custom.key": "val", "rootfs-image.single-file.version": "app-1.0"},
            depends={"dep.key": "dval", "list.key": ["x", "y"]},
            clears_provides=("foo.*", "rootfs-image.single-file.*"),
            meta_data=b'{"dest_dir":"/opt/app","list":["x",1],"n":3}',
        ),
    )
    out = tmp_path / "m.mender"
    write_artifact(out, spec)
    header = read_artifact(out)
    assert header.artifact_group == "grp1"
    assert header.device_types == ("devA", "devB")
    assert header.depends == {
        "artifact_name": ["release-0"],
        "artifact_group": ["grp0"],
        "dep.key": "dval",
        "list.key": ["x", "y"],
    }
    assert header.scripts["ArtifactInstall_Enter_00"].startswith(b"#!/bin/sh")
    assert sorted(header.scripts) == ["ArtifactCommit_Leave_50_notify", "ArtifactInstall_Enter_00"]
    payload = header.payloads[0]
    assert payload.meta_data == {"dest_dir": "/opt/app", "list": ["x", 1], "n": 3}
    assert [(f.name, f.size) for f in payload.files] == [
        ("a.txt", 1000),
        ("b.conf", 0),
        ("c.bin", 3 << 20),
    ]
    assert {f.name: f.sha256 for f in payload.files} == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }
    members = dict(outer_members(out.read_bytes()))
    inner = [n for n, _ in inner_members(members["header.tar.gz"], ".gz")]
    assert inner == [
        "header-info",
        "scripts/ArtifactInstall_Enter_00",
        "scripts/ArtifactCommit_Leave_50_notify",
        "headers/0000/type-info",
        "headers/0000/meta-data",
    ]


def test_bootstrap_artifact_has_an_empty_data_tar_and_no_meta_data(tmp_path: Path):
    spec = ArtifactSpec(
        name="boot-1",
        device_types=("qemux86-64",),
        compression=by_id("gzip"),
        payload=PayloadSpec(type=None, provides={"some.key": "v"}),
    )
    out = tmp_path / "b.mender"
    write_artifact(out, spec)
    members = dict(outer_members(out.read_bytes()))
    assert list(members) == ["version", "manifest", "header.tar.gz", "data/0000.tar.gz"]
    assert inner_members(members["data/0000.tar.gz"], ".gz") == []
    assert [n for n, _ in inner_members(members["header.tar.gz"], ".gz")] == [
        "header-info",
        "headers/0000/type-info",
    ]
    assert b"data/" not in members["manifest"]
    header = read_artifact(out)
    assert header.payloads[0].type is None
    assert header.type_provides == {"some.key": "v"}


SIGNING_KEYS = ["rsa2048", "rsa3072", "rsa4096", "rsa2048-pkcs8", "ec", "ec-pkcs8"]


@pytest.mark.parametrize("key", SIGNING_KEYS)
def test_signed_artifact_verifies_and_keeps_the_unsigned_manifest(
    tmp_path: Path, rootfs: Path, keys, key: str
):
    signed, unsigned = tmp_path / "s.mender", tmp_path / "u.mender"
    write_artifact(signed, _rootfs_spec(rootfs), load_signer(keys[key].private))
    write_artifact(unsigned, _rootfs_spec(rootfs))
    members = outer_members(signed.read_bytes())
    assert [n for n, _ in members][:4] == ["version", "manifest", "manifest.sig", "header.tar.gz"]
    assert members[1] == outer_members(unsigned.read_bytes())[1]
    header = read_artifact(signed, verify_keys=[load_verifier(keys[key].public)])
    assert header.signed and header.signature_verified
    expected_len = {"rsa2048": 344, "rsa3072": 512, "rsa4096": 684, "ec": 88}
    assert len(members[2][1]) == expected_len[key.removesuffix("-pkcs8")]


# --- the reserved room --------------------------------------------------------------
@pytest.mark.parametrize("reserve", [0, 512, 1024, 1536, 2048, 2560, 3072, 4096, 8192, 16384])
def test_payload_is_shifted_when_the_reserved_room_is_too_small(tmp_path: Path, keys, reserve: int):
    # 3.5 MiB stored payload: the shift copies several 1 MiB steps, in both directions
    image = tmp_path / "rootfs.ext4"
    image.write_bytes(os.urandom(3 << 20) + b"tail" * 100_000)
    out = tmp_path / "a.mender"
    write_artifact(
        out, _rootfs_spec(image, "none"), load_signer(keys["rsa4096"].private), _reserve=reserve
    )
    header = read_artifact(out, verify_keys=[load_verifier(keys["rsa4096"].public)])
    assert header.payloads[0].files[0].size == image.stat().st_size
    members = dict(outer_members(out.read_bytes()))
    assert inner_members(members["data/0000.tar"], "") == [("rootfs.ext4", image.read_bytes())]
    assert files_in(tmp_path) == {"rootfs.ext4", "a.mender"}


def test_a_huge_header_outgrowing_the_estimate_still_writes(tmp_path: Path, rootfs: Path):
    scripts = []
    for number in range(40):
        path = tmp_path / f"ArtifactInstall_Enter_{number:02d}"
        path.write_bytes(os.urandom(2000))  # incompressible: the header grows past the slack
        scripts.append(path)
    out = tmp_path / "a.mender"
    write_artifact(out, _rootfs_spec(rootfs, scripts=tuple(scripts)))
    assert len(read_artifact(out).scripts) == 40


# --- no partial output --------------------------------------------------------------
def test_a_failure_mid_payload_leaves_no_file_behind(tmp_path: Path):
    image = tmp_path / "rootfs.ext4"
    image.write_bytes(bytes(5 << 20))
    out = tmp_path / "a.mender"
    calls = []

    def progress(count: int) -> None:
        calls.append(count)
        if len(calls) == 3:
            raise InputError("simulated read failure")

    with pytest.raises(InputError, match=r"simulated"):
        write_artifact(out, _rootfs_spec(image), progress=progress)
    assert files_in(tmp_path) == {"rootfs.ext4"}


def test_an_existing_output_is_kept_when_writing_fails(tmp_path: Path):
    out = tmp_path / "a.mender"
    out.write_bytes(b"previous")
    with pytest.raises(InputError):
        write_artifact(out, _rootfs_spec(tmp_path / "missing.ext4"))
    assert out.read_bytes() == b"previous"
    assert files_in(tmp_path) == {"a.mender"}


def test_an_unwritable_output_directory_is_an_output_error(tmp_path: Path, rootfs: Path):
    with pytest.raises(OutputError, match=r"cannot create"):
        write_artifact(tmp_path / "no" / "such" / "dir" / "a.mender", _rootfs_spec(rootfs))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError):
        write_artifact(tmp_path / "file" / "a.mender", _rootfs_spec(rootfs))


def test_duplicate_payload_basenames_are_refused(tmp_path: Path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_bytes(b"1")
    (tmp_path / "f").write_bytes(b"2")
    spec = ArtifactSpec(
        name="n",
        device_types=("d",),
        compression=by_id("none"),
        payload=PayloadSpec(type="t", files=(tmp_path / "f", tmp_path / "x" / "f")),
    )
    with pytest.raises(InputError, match=r"distinct base names"):
        write_artifact(tmp_path / "a.mender", spec)


def test_source_date_epoch_makes_the_artifact_reproducible(
    tmp_path: Path, rootfs: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    write_artifact(tmp_path / "1.mender", _rootfs_spec(rootfs))
    os.utime(rootfs, (0, 0))
    write_artifact(tmp_path / "2.mender", _rootfs_spec(rootfs))
    assert (tmp_path / "1.mender").read_bytes() == (tmp_path / "2.mender").read_bytes()
