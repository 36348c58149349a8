"""Interop both ways with Debian's mender-artifact 3.9 (issue 3, mender-compat.md §1).

Ours -> mender: every kind and option we write is accepted by `mender-artifact read`
and `validate -k`. Mender -> ours: every kind mender-artifact writes is read by us
with the header data it was given, and validated. Same inputs to both tools give
the same header-info / type-info / meta-data bytes, except the documented rootfs
type-info quirk (3.9 writes "type":"" where we write "rootfs-image").
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import subprocess
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pyupdate_artifact import crypto
from pyupdate_host.cli.main import main

pytestmark = pytest.mark.peers

COMPRESSIONS = ["none", "gzip", "lzma"]
SUFFIX = {"none": "", "gzip": ".gz", "lzma": ".xz"}
SIGNING = ["unsigned", "rsa", "ec"]
SCRIPT_NAMES = ("ArtifactInstall_Enter_00", "ArtifactCommit_Leave_10_notify")


# --- fixtures ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("interop")
    paths: dict[str, Path] = {}
    pkcs1 = serialization.PrivateFormat.TraditionalOpenSSL  # mender 3.9 needs PKCS#1 / SEC1
    for name, key in (
        ("rsa", rsa.generate_private_key(65537, 3072)),
        ("ec", ec.generate_private_key(ec.SECP256R1())),
    ):
        paths[f"{name}.key"] = folder / f"{name}.key"
        paths[f"{name}.key"].write_bytes(
            key.private_bytes(serialization.Encoding.PEM, pkcs1, serialization.NoEncryption())
        )
        paths[f"{name}-pkcs8.key"] = folder / f"{name}-pkcs8.key"
        paths[f"{name}-pkcs8.key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        paths[f"{name}.pub"] = folder / f"{name}.pub"
        paths[f"{name}.pub"].write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    paths["rootfs"] = folder / "rootfs.ext4"
    paths["rootfs"].write_bytes(bytes(range(256)) * 4096 + b"hello rootfs\n" * 1000)
    paths["a"] = folder / "a.txt"
    paths["a"].write_bytes(b"A\n")
    paths["b"] = folder / "b.conf"
    paths["b"].write_bytes(b"key=value\n" * 300)
    paths["meta"] = folder / "meta.json"
    paths["meta"].write_text(
        '{"n": 3, "list": ["x", 1], "dest_dir": "/opt/app", "nested": {"k": "<v>"}}'
    )
    for name in SCRIPT_NAMES:
        paths[name] = folder / name
        paths[name].write_text(f"#!/bin/sh\necho {name}\n")
        paths[name].chmod(0o755)
    return paths


def ours(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def mender(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["mender-artifact", *map(str, argv)], capture_output=True, text=True, timeout=120
    )


def mender_ok(*argv) -> str:
    done = mender(*argv)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def header_members(path: Path) -> dict[str, bytes]:
    """header-info, scripts/*, headers/0000/* of an artifact, decompressed."""
    with tarfile.open(path) as outer:
        member = next(m for m in outer if m.name.startswith("header.tar"))
        blob = outer.extractfile(member).read()
    if member.name.endswith(".gz"):
        blob = gzip.decompress(blob)
    elif member.name.endswith(".xz"):
        blob = lzma.decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(blob)) as inner:
        return {m.name: inner.extractfile(m).read() for m in inner}


def rootfs_options(inputs: dict[str, Path]) -> list[str | Path]:
    options: list[str | Path] = [
        "-n", "release-2", "-t", "devA", "-t", "devB", "-f", inputs["rootfs"],
        "-p", "custom.key:val", "-d", "dep.key:dval", "-N", "release-1", "-N", "release-0",
        "-g", "grp1", "-G", "grp0", "--software-name", "os", "--software-version", "2.0",
        "--clears-provides", "foo.*",
    ]  # fmt: skip
    for name in SCRIPT_NAMES:
        options += ["-s", inputs[name]]
    return options


def module_options(inputs: dict[str, Path]) -> list[str | Path]:
    return [
        "-T", "single-file", "-n", "app-1.0", "-t", "devA", "-f", inputs["a"], "-f", inputs["b"],
        "-m", inputs["meta"], "-N", "release-0", "-G", "grp0", "-g", "grp1",
        "-p", "custom.key:val", "-d", "dep.key:dval", "--clears-provides", "foo.*",
        "-s", inputs["ArtifactInstall_Enter_00"],
    ]  # fmt: skip


KINDS = {
    "rootfs-image": rootfs_options,
    "module-image": module_options,
    "bootstrap-artifact": lambda inputs: [
        "-n",
        "boot-1",
        "-t",
        "qemux86-64",
        "-p",
        "seed.key:v",
        "-N",
        "r0",
    ],
}


def _progress(kind: str) -> list[str]:
    # only `write rootfs-image` of mender-artifact 3.9 knows --no-progress
    return ["--no-progress"] if kind == "rootfs-image" else []


def _signing(inputs, signing: str, *, pkcs8: bool = False) -> tuple[list, list]:
    if signing == "unsigned":
        return [], []
    key = inputs[f"{signing}-pkcs8.key" if pkcs8 else f"{signing}.key"]
    return ["-k", key], ["-k", inputs[f"{signing}.pub"]]


# --- ours -> mender-artifact ---------------------------------------------------------
@pytest.mark.parametrize("signing", SIGNING)
@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_mender_artifact_accepts_what_we_write(
    capsys, tmp_path, inputs, kind, compression, signing
):
    sign, verify = _signing(inputs, signing, pkcs8=compression == "lzma")  # PKCS#8 keys too
    out = tmp_path / "ours.mender"
    rc, _, err = ours(
        capsys, "write", kind, *KINDS[kind](inputs), "-o", out, "--compression", compression, *sign
    )
    assert rc == 0, err
    text = mender_ok("read", out, *verify)
    if signing != "unsigned":
        assert "Signature: signed and verified correctly" in text
        mender_ok("validate", out, *verify)
    else:
        mender_ok("validate", out)
        bad = mender("validate", out, "-k", inputs["ec.pub"])
        assert bad.returncode != 0  # mender refuses an unsigned artifact when a key is given
    name = {"rootfs-image": "release-2", "module-image": "app-1.0", "bootstrap-artifact": "boot-1"}[
        kind
    ]
    assert f"Name: {name}" in text


def test_mender_artifact_validates_the_shifted_layout(tmp_path, inputs):
    from pyupdate_artifact.compression import by_id
    from pyupdate_host.sign import load_signer
    from pyupdate_host.writer import ArtifactSpec, PayloadSpec, write_artifact

    spec = ArtifactSpec(
        name="r",
        device_types=("d",),
        compression=by_id("gzip"),
        payload=PayloadSpec(type="rootfs-image", files=(inputs["rootfs"],), meta_data=b""),
    )
    for reserve in (0, 2048):
        out = tmp_path / f"shifted-{reserve}.mender"
        write_artifact(out, spec, load_signer(inputs["rsa.key"]), _reserve=reserve)
        mender_ok("validate", out, "-k", inputs["rsa.pub"])


@pytest.mark.parametrize("signing", ["rsa", "ec"])
def test_mender_artifact_verifies_our_signature_on_its_artifact(capsys, tmp_path, inputs, signing):
    out = tmp_path / "m.mender"
    mender_ok("write", "rootfs-image", *rootfs_options(inputs), "-o", out, "--no-progress")
    rc, _, err = ours(capsys, "sign", out, "-k", inputs[f"{signing}.key"])
    assert rc == 0, err
    mender_ok("validate", out, "-k", inputs[f"{signing}.pub"])


# --- mender-artifact -> ours ----------------------------------------------------------
EXPECTED = {
    "rootfs-image": {
        "name": "release-2",
        "artifact_provides": {"artifact_name": "release-2", "artifact_group": "grp1"},
        "artifact_depends": {
            "device_type": ["devA", "devB"],
            "artifact_name": ["release-1", "release-0"],
            "artifact_group": ["grp0"],
        },
        "depends": {
            "artifact_name": ["release-1", "release-0"],
            "artifact_group": ["grp0"],
            "dep.key": "dval",
        },
        "clears_provides": ["foo.*", "rootfs-image.os.*"],
        "scripts": sorted(SCRIPT_NAMES),
        "type": "rootfs-image",
        "meta_data": None,
    },
    "module-image": {
        "name": "app-1.0",
        "artifact_provides": {"artifact_name": "app-1.0", "artifact_group": "grp1"},
        "artifact_depends": {
            "device_type": ["devA"],
            "artifact_name": ["release-0"],
            "artifact_group": ["grp0"],
        },
        "depends": {"artifact_name": ["release-0"], "artifact_group": ["grp0"], "dep.key": "dval"},
        "clears_provides": ["foo.*", "rootfs-image.single-file.*"],
        "scripts": ["ArtifactInstall_Enter_00"],
        "type": "single-file",
        "meta_data": {"dest_dir": "/opt/app", "list": ["x", 1], "n": 3, "nested": {"k": "<v>"}},
    },
    "bootstrap-artifact": {
        "name": "boot-1",
        "artifact_provides": {"artifact_name": "boot-1"},
        "artifact_depends": {
            "device_type": ["qemux86-64"],
            "artifact_name": ["r0"],
            "artifact_group": [],
        },
        "depends": {"artifact_name": ["r0"]},
        "clears_provides": None,
        "scripts": [],
        "type": None,
        "meta_data": None,
    },
}


def _expected_provides(kind: str, inputs) -> dict[str, str]:
    import hashlib

    if kind == "rootfs-image":
        return {
            "custom.key": "val",
            "rootfs-image.os.version": "2.0",
            "rootfs-image.checksum": hashlib.sha256(inputs["rootfs"].read_bytes()).hexdigest(),
        }
    if kind == "module-image":
        return {"custom.key": "val", "rootfs-image.single-file.version": "app-1.0"}
    return {"seed.key": "v"}


def _expected_files(kind: str, inputs) -> list[tuple[str, int]]:
    names = {"rootfs-image": ["rootfs"], "module-image": ["a", "b"], "bootstrap-artifact": []}[kind]
    return [(inputs[n].name, inputs[n].stat().st_size) for n in names]


@pytest.mark.parametrize("signing", SIGNING)
@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_we_read_and_validate_what_mender_artifact_writes(
    capsys, tmp_path, inputs, kind, compression, signing
):
    sign, verify = _signing(inputs, signing)
    out = tmp_path / "m.mender"
    mender_ok(
        "write",
        kind,
        *KINDS[kind](inputs),
        "-o",
        out,
        "--compression",
        compression,
        *_progress(kind),
        *sign,
    )
    rc, text, err = ours(capsys, "read", "--json", out, *verify)
    assert rc == 0, err
    doc = json.loads(text)
    expected = EXPECTED[kind]
    assert doc["name"] == expected["name"]
    assert doc["compression"] == compression
    assert doc["signature"] == {"present": signing != "unsigned", "verified": signing != "unsigned"}
    assert doc["artifact_provides"] == expected["artifact_provides"]
    assert doc["artifact_depends"] == expected["artifact_depends"]
    assert doc["provides"] == _expected_provides(kind, inputs)
    assert doc["depends"] == expected["depends"]
    assert doc["clears_provides"] == expected["clears_provides"]
    assert doc["scripts"] == expected["scripts"]
    payload = doc["payloads"][0]
    assert payload["type"] == expected["type"]
    assert payload["meta_data"] == expected["meta_data"]
    assert [(f["name"], f["size"]) for f in payload["files"]] == _expected_files(kind, inputs)
    rc, _, err = ours(capsys, "validate", out, *verify)
    assert rc == 0, err
    if signing != "unsigned":
        other = inputs["ec.pub" if signing == "rsa" else "rsa.pub"]
        rc, _, err = ours(capsys, "validate", out, "-k", other)
        assert rc == 5 and err.startswith("error: ")


def test_we_refuse_a_tampered_mender_artifact(capsys, tmp_path, inputs):
    out = tmp_path / "m.mender"
    mender_ok(
        "write",
        "rootfs-image",
        *rootfs_options(inputs),
        "-o",
        out,
        "--compression",
        "none",
        "--no-progress",
    )
    data = bytearray(out.read_bytes())
    data[data.rindex(b"hello rootfs")] ^= 0x20
    out.write_bytes(bytes(data))
    assert mender("validate", out).returncode != 0
    rc, _, err = ours(capsys, "validate", out)
    assert rc == 4 and "does not match its manifest checksum" in err


# --- same inputs, same header bytes -------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_both_tools_write_identical_header_json(capsys, tmp_path, inputs, kind):
    theirs, mine = tmp_path / "m.mender", tmp_path / "p.mender"
    mender_ok("write", kind, *KINDS[kind](inputs), "-o", theirs, *_progress(kind))
    assert ours(capsys, "write", kind, *KINDS[kind](inputs), "-o", mine)[0] == 0
    a, b = header_members(theirs), header_members(mine)

    # same members in the same order; mender orders scripts by Go map iteration (random)
    def shape(names):
        return ["scripts/*" if n.startswith("scripts/") else n for n in names]

    assert shape(a) == shape(b)
    assert set(a) == set(b)
    assert sorted(n for n in a if n.startswith("scripts/")) == sorted(
        n for n in b if n.startswith("scripts/")
    )
    assert a["header-info"] == b["header-info"]
    if kind == "rootfs-image":
        assert a["headers/0000/type-info"].startswith(b'{"type":"",')
        assert (
            a["headers/0000/type-info"].replace(b'"type":""', b'"type":"rootfs-image"', 1)
            == b["headers/0000/type-info"]
        )
    else:
        assert a["headers/0000/type-info"] == b["headers/0000/type-info"]
    assert a.get("headers/0000/meta-data") == b.get("headers/0000/meta-data")
    for name in a:
        if name.startswith("scripts/"):
            assert a[name] == b[name]


def test_manifest_lines_match_mender_artifact(capsys, tmp_path, inputs):
    theirs, mine = tmp_path / "m.mender", tmp_path / "p.mender"
    args = ["module-image", *module_options(inputs), "--compression", "none"]
    mender_ok("write", *args, "-o", theirs)
    assert ours(capsys, "write", *args, "-o", mine)[0] == 0
    with tarfile.open(theirs) as t:
        m = t.extractfile("manifest").read().splitlines()
    with tarfile.open(mine) as t:
        p = t.extractfile("manifest").read().splitlines()
    # data lines and version are byte-equal; the header line differs only by header bytes
    assert [line for line in m if b"header" not in line] == [
        line for line in p if b"header" not in line
    ]
    assert [line.split()[1] for line in m] == [line.split()[1] for line in p]


SOFTWARE_OPTIONS = [
    [],
    ["--software-name", "os"],
    ["--software-filesystem", "fs"],
    ["--software-name", "os", "--software-filesystem", "fs"],
    ["--software-version", "9"],
    ["--no-default-software-version"],
    ["--no-default-clears-provides"],
    ["--clears-provides", "x.*", "--clears-provides", "y"],
    ["--no-default-software-version", "--clears-provides", "x.*"],
]


@pytest.mark.parametrize("options", SOFTWARE_OPTIONS, ids=lambda o: " ".join(o) or "defaults")
@pytest.mark.parametrize("kind", ["rootfs-image", "module-image"])
def test_software_and_clears_defaults_match_mender_artifact(
    capsys, tmp_path, inputs, kind, options
):
    extra = ["--legacy-rootfs-image-checksum"] if kind == "rootfs-image" and "9" in options else []
    base = ["-n", "r", "-t", "d", "-f", inputs["a"], *options, *extra]
    if kind == "module-image":
        base = ["-T", "mod", *base]
    theirs, mine = tmp_path / "m.mender", tmp_path / "p.mender"
    mender_ok("write", kind, *base, "-o", theirs, *_progress(kind))
    assert ours(capsys, "write", kind, *base, "-o", mine)[0] == 0
    a, b = header_members(theirs), header_members(mine)
    assert (
        a["headers/0000/type-info"].replace(b'"type":""', b'"type":"rootfs-image"', 1)
        == b["headers/0000/type-info"]
    )


# --- both crypto backends, with keys made by each -------------------------------------
@pytest.fixture(scope="module")
def openssl_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """RSA 3072 and P-256 keys made by the libcrypto backend, written as PKCS#1 / SEC1
    (the only private formats mender-artifact 3.9 takes) and SubjectPublicKeyInfo."""
    folder = tmp_path_factory.mktemp("openssl-keys")
    backend = crypto.backend("openssl")
    paths: dict[str, Path] = {}
    for name in ("rsa", "ec"):
        key = backend.generate("rsa" if name == "rsa" else "ec", 3072)
        paths[f"{name}.key"] = folder / f"{name}.key"
        paths[f"{name}.key"].write_bytes(key.pem())
        paths[f"{name}.pub"] = folder / f"{name}.pub"
        paths[f"{name}.pub"].write_bytes(key.public_key().pem())
    return paths


def _key_sets(inputs, openssl_keys) -> dict[str, dict[str, Path]]:
    return {"cryptography-made": inputs, "libcrypto-made": openssl_keys}


@pytest.mark.parametrize("signing", ["rsa", "ec"])
@pytest.mark.parametrize("backend", crypto.NAMES)
def test_mender_artifact_validates_what_each_backend_signs(
    capsys, tmp_path, inputs, openssl_keys, monkeypatch, backend, signing
):
    monkeypatch.setenv(crypto.ENV, backend)
    for origin, keys in _key_sets(inputs, openssl_keys).items():
        out = tmp_path / f"ours-{origin}.mender"
        rc, _, err = ours(
            capsys, "write", "rootfs-image", *rootfs_options(inputs), "-o", out,
            "-k", keys[f"{signing}.key"],
        )  # fmt: skip
        assert rc == 0, (origin, err)
        mender_ok("validate", out, "-k", keys[f"{signing}.pub"])
        theirs = tmp_path / f"theirs-{origin}.mender"
        mender_ok("write", "rootfs-image", *rootfs_options(inputs), "-o", theirs, "--no-progress")
        rc, _, err = ours(capsys, "sign", theirs, "-k", keys[f"{signing}.key"])
        assert rc == 0, (origin, err)
        mender_ok("validate", theirs, "-k", keys[f"{signing}.pub"])


@pytest.mark.parametrize("signing", ["rsa", "ec"])
@pytest.mark.parametrize("backend", crypto.NAMES)
def test_each_backend_validates_what_mender_artifact_signs(
    capsys, tmp_path, inputs, openssl_keys, monkeypatch, backend, signing
):
    monkeypatch.setenv(crypto.ENV, backend)
    other = "ec" if signing == "rsa" else "rsa"
    for origin, keys in _key_sets(inputs, openssl_keys).items():
        out = tmp_path / f"{origin}.mender"
        mender_ok(
            "write", "module-image", *module_options(inputs), "-o", out,
            "-k", keys[f"{signing}.key"],
        )  # fmt: skip
        rc, _, err = ours(capsys, "validate", out, "-k", keys[f"{signing}.pub"])
        assert rc == 0, (origin, err)
        rc, _, err = ours(capsys, "validate", out, "-k", keys[f"{other}.pub"])
        assert rc == 5 and err.startswith("error: ") and len(err.splitlines()) == 1, err
