"""Bad input: one `error:` line on stderr, a non-zero exit, no traceback, no partial output.

Every malformed artifact is built from valid members (artifact_helpers.Parts),
with one thing wrong, so each test fails for the reason it names.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib
from pathlib import Path

import pytest
from artifact_helpers import (
    HELLO,
    Parts,
    Result,
    assert_one_error_line,
    files_in,
    manifest_for,
    tar_bytes,
)

from pyupdate_artifact import tarsafe
from pyupdate_artifact.format.version import VERSION_BYTES
from pyupdate_host.sign import load_signer


def _validate(cli, tmp_path: Path, data: bytes, *extra) -> Result:
    path = tmp_path / "bad.mender"
    path.write_bytes(data)
    return cli("validate", path, *extra)


def _check(cli, tmp_path: Path, data: bytes, rc: int, contains: str, *extra) -> None:
    assert_one_error_line(_validate(cli, tmp_path, data, *extra), rc, contains)
    # `read` goes through the same reader and must fail the same way
    assert_one_error_line(cli("read", tmp_path / "bad.mender", *extra), rc, contains)


@pytest.fixture
def written(cli, tmp_path: Path, rootfs: Path, keys) -> Path:
    out = tmp_path / "ok.mender"
    result = cli(
        "write",
        "rootfs-image",
        "-n",
        "r1",
        "-t",
        "d",
        "-f",
        rootfs,
        "-o",
        out,
        "-k",
        keys["rsa2048"].private,
    )
    assert result.rc == 0
    return out


def test_the_member_built_artifact_is_valid(cli, tmp_path: Path):
    assert _validate(cli, tmp_path, Parts().build()).rc == 0


# --- truncated, corrupted, empty ----------------------------------------------------
def test_empty_file(cli, tmp_path: Path):
    _check(cli, tmp_path, b"", 4, "empty file, not a Mender artifact")


def test_not_a_tar_at_all(cli, tmp_path: Path):
    _check(cli, tmp_path, b"PK\x03\x04" + bytes(600), 4, "corrupt tar header")
    _check(cli, tmp_path, gzip.compress(Parts().build()), 4, "corrupt tar header")


def test_truncated_at_every_offset_is_refused(cli, tmp_path: Path, written: Path, keys):
    data = written.read_bytes()
    end = len(data) - 1024  # the 1024-byte trailer is optional, as in Go's archive/tar
    offsets = sorted(
        set(range(0, end, 97)) | {1, 511, 512, 513, end - 1} | set(range(end - 600, end, 13))
    )
    for cut in offsets:
        result = _validate(cli, tmp_path, data[:cut], "-k", keys["rsa2048"].public)
        assert_one_error_line(result)
        assert result.rc in (4, 5), (cut, result)
    assert _validate(cli, tmp_path, data[:end]).rc == 0


def test_truncated_payload_of_a_big_artifact(cli, tmp_path: Path):
    data = Parts(files={"rootfs.ext4": bytes(range(256)) * 20000}).build()
    for cut in (len(data) // 2, len(data) - 1100, len(data) - 1536):
        assert_one_error_line(_validate(cli, tmp_path, data[:cut]), 4)


@pytest.mark.parametrize(
    ("member", "rc", "contains"),
    [
        ("version", 4, "version"),
        ("manifest", 5, "does not verify"),  # the signature covers the manifest bytes
        ("manifest.sig", 5, "manifest.sig"),
        ("header.tar.gz", 4, "header.tar.gz"),
        ("data/0000.tar.gz", 4, "data/0000.tar.gz"),
    ],
)
def test_a_corrupted_byte_in_each_member_is_refused(
    cli, tmp_path: Path, written: Path, keys, member, rc, contains
):
    data = bytearray(written.read_bytes())
    with tarfile.open(written) as tar:
        info = tar.getmember(member)
    data[info.offset_data + min(20, info.size // 2)] ^= 0x01
    _check(cli, tmp_path, bytes(data), rc, contains, "-k", keys["rsa2048"].public)


def test_a_corrupted_tar_header_block_is_refused(cli, tmp_path: Path, written: Path):
    data = bytearray(written.read_bytes())
    with tarfile.open(written) as tar:
        offset = tar.getmember("header.tar.gz").offset
    data[offset + 3] ^= 0x01
    _check(cli, tmp_path, bytes(data), 4, "checksum mismatch")


def test_corrupted_payload_content_fails_its_checksum(cli, tmp_path: Path):
    parts = Parts()
    parts.data_members = [("rootfs.ext4", HELLO.upper())]
    _check(cli, tmp_path, parts.build(), 4, "rootfs.ext4 does not match its manifest checksum")


def test_corrupted_manifest_line_fails_the_header_checksum(cli, tmp_path: Path):
    members = Parts().members()
    manifest = members[1][1].replace(b"  header.tar.gz", b"  header.tar.gz").replace(b"9", b"8", 1)
    members[1] = ("manifest", manifest)
    assert_one_error_line(_validate(cli, tmp_path, tar_bytes(members)), 4)


# --- signatures -----------------------------------------------------------------------
@pytest.mark.usefixtures("crypto_backend")  # both backends, same one line
def test_wrong_key(cli, tmp_path: Path, written: Path, keys):
    _check(
        cli, tmp_path, written.read_bytes(), 5, "does not verify", "-k", keys["rsa-other"].public
    )
    _check(cli, tmp_path, written.read_bytes(), 5, "does not verify", "-k", keys["ec"].public)


@pytest.mark.usefixtures("crypto_backend")  # both backends, same one line
def test_bad_signature(cli, tmp_path: Path, keys):
    members = Parts().members()
    members.insert(2, ("manifest.sig", b"bm90IGEgc2lnbmF0dXJl"))
    _check(cli, tmp_path, tar_bytes(members), 5, "does not verify", "-k", keys["ec"].public)
    members[2] = ("manifest.sig", b"***")
    _check(cli, tmp_path, tar_bytes(members), 5, "not valid base64", "-k", keys["ec"].public)


@pytest.mark.usefixtures("crypto_backend")  # both backends, same one line
def test_a_signature_of_a_different_manifest(cli, tmp_path: Path, keys):
    members = Parts().members()
    other = Parts(files={"rootfs.ext4": b"other"}).members()[1][1]
    members.insert(2, ("manifest.sig", load_signer(keys["ec"].private).sign(other)))
    _check(cli, tmp_path, tar_bytes(members), 5, "does not verify", "-k", keys["ec"].public)


def test_unsigned_artifact_when_a_key_is_given(cli, tmp_path: Path, keys):
    _check(cli, tmp_path, Parts().build(), 5, "not signed", "-k", keys["ec"].public)


def test_an_oversized_signature(cli, tmp_path: Path, keys):
    members = Parts().members()
    members.insert(2, ("manifest.sig", b"A" * 100_000))
    _check(
        cli,
        tmp_path,
        tar_bytes(members),
        4,
        "manifest.sig is 100000 bytes",
        "-k",
        keys["ec"].public,
    )


# --- version -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "contains"),
    [
        (b'{"format":"mender","version":2}', "unsupported artifact format version 2"),
        (b'{"format":"mender","version":4}', "unsupported artifact format version 4"),
        (b'{"format":"mender","version":3,"extra":1}', "exactly the keys"),
        (b'{"format":"mender",', "not valid JSON"),
    ],
)
def test_unknown_format_versions_and_bad_version_json(
    cli, tmp_path: Path, version: bytes, contains: str
):
    members = Parts().members()
    members[0] = ("version", version)
    _check(cli, tmp_path, tar_bytes(members), 4, contains)


# --- tar member names, links, duplicates, order ----------------------------------------
def _outer_with(
    extra_first: list[tuple[str, bytes]] | None = None, replace: dict | None = None
) -> bytes:
    members = Parts().members()
    if replace:
        members = [(replace.get(n, n), d) for n, d in members]
    return tar_bytes((extra_first or []) + members)


@pytest.mark.parametrize("name", ["/version", "../version", "./version", "a/../../version"])
def test_outer_members_with_absolute_or_dotdot_paths(cli, tmp_path: Path, name: str):
    _check(cli, tmp_path, _outer_with(replace={"version": name}), 4, "unsafe member name")


@pytest.mark.parametrize("name", ["/etc/passwd", "../../etc/passwd", "../rootfs.ext4"])
def test_payload_files_with_absolute_or_dotdot_paths(cli, tmp_path: Path, name: str):
    parts = Parts()
    parts.data_members = [(name, HELLO)]
    _check(cli, tmp_path, parts.build(), 4, "unsafe member name")


def test_payload_file_in_a_subdirectory(cli, tmp_path: Path):
    parts = Parts()
    parts.data_members = [("sub/rootfs.ext4", HELLO)]
    _check(cli, tmp_path, parts.build(), 4, "has no manifest entry")


def test_header_member_with_dotdot_path(cli, tmp_path: Path):
    parts = Parts()
    parts.header_members = [
        (
            "header-info",
            b'{"payloads":[{"type":"x"}],"artifact_provides":{"artifact_name":"a"},"artifact_depends":{"device_type":["d"]}}',
        ),
        ("headers/0000/../../x", b"{}"),
    ]
    _check(cli, tmp_path, parts.build(), 4, "unsafe member name")


def _link(name: str, kind: bytes, target: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info.tobuf(tarfile.USTAR_FORMAT)


@pytest.mark.parametrize(
    ("kind", "what"), [(tarfile.SYMTYPE, "symlink"), (tarfile.LNKTYPE, "hard link")]
)
def test_links_in_the_outer_tar(cli, tmp_path: Path, kind: bytes, what: str):
    members = Parts().members()
    data = tar_bytes(members[:3], trailer=False) + _link("data/0000.tar.gz", kind, "/etc/shadow")
    _check(cli, tmp_path, data + tarsafe.end_of_archive(), 4, f"is a {what}")


@pytest.mark.parametrize(
    ("kind", "what"), [(tarfile.SYMTYPE, "symlink"), (tarfile.LNKTYPE, "hard link")]
)
def test_links_in_the_payload_tar(cli, tmp_path: Path, kind: bytes, what: str):
    parts = Parts(suffix="")
    members = parts.members()
    inner = _link("rootfs.ext4", kind, "/etc/shadow") + tarsafe.end_of_archive()
    members[3] = ("data/0000.tar", inner)
    _check(cli, tmp_path, tar_bytes(members), 4, f"is a {what}")


@pytest.mark.parametrize("name", ["version", "manifest", "header.tar.gz", "data/0000.tar.gz"])
def test_duplicate_outer_members(cli, tmp_path: Path, name: str):
    members = Parts().members()
    index = [n for n, _ in members].index(name)
    members.insert(index + 1, members[index])
    assert_one_error_line(_validate(cli, tmp_path, tar_bytes(members)), 4)


def test_duplicate_payload_file(cli, tmp_path: Path):
    parts = Parts()
    parts.data_members = [("rootfs.ext4", HELLO), ("rootfs.ext4", HELLO)]
    _check(cli, tmp_path, parts.build(), 4, "duplicate payload file 'rootfs.ext4'")


def test_duplicate_type_info(cli, tmp_path: Path):
    parts = Parts()
    parts.header_members = [
        (
            "header-info",
            b'{"payloads":[{"type":"x"}],"artifact_provides":{"artifact_name":"a"},"artifact_depends":{"device_type":["d"]}}',
        ),
        ("headers/0000/type-info", b'{"type":"x"}'),
        ("headers/0000/type-info", b'{"type":"x"}'),
    ]
    _check(cli, tmp_path, parts.build(), 4, "duplicate or out of order")


@pytest.mark.parametrize(
    ("order", "contains"),
    [
        (
            ["manifest", "version", "header.tar.gz", "data/0000.tar.gz"],
            "first member is 'manifest'",
        ),
        (
            ["version", "header.tar.gz", "manifest", "data/0000.tar.gz"],
            "expected 'manifest' after 'version'",
        ),
        (["version", "manifest", "data/0000.tar.gz", "header.tar.gz"], "expected 'header.tar"),
        (["version", "manifest", "header.tar.gz"], "in the manifest but not in the artifact"),
    ],
)
def test_out_of_order_or_missing_outer_members(
    cli, tmp_path: Path, order: list[str], contains: str
):
    members = dict(Parts().members())
    _check(cli, tmp_path, tar_bytes([(n, members[n]) for n in order]), 4, contains)


def test_signature_after_the_header(cli, tmp_path: Path, keys):
    members = Parts().members()
    members.insert(3, ("manifest.sig", load_signer(keys["ec"].private).sign(members[1][1])))
    _check(cli, tmp_path, tar_bytes(members), 4, "unexpected member 'manifest.sig'")


def test_a_payload_without_a_header(cli, tmp_path: Path):
    members = Parts().members()
    members.append(("data/0001.tar.gz", members[3][1]))
    _check(
        cli, tmp_path, tar_bytes(members), 4, "data/0001.tar.gz is out of order or has no header"
    )


def test_an_unknown_member_after_the_header(cli, tmp_path: Path):
    members = Parts().members()
    members.append(("evil.sh", b"rm -rf /"))
    _check(cli, tmp_path, tar_bytes(members), 4, "unexpected member 'evil.sh'")


def test_augmented_artifacts_are_refused(cli, tmp_path: Path):
    members = Parts().members()
    members.insert(2, ("manifest-augment", b""))
    _check(cli, tmp_path, tar_bytes(members), 4, "augmented")


@pytest.mark.parametrize(
    ("header_members", "contains"),
    [
        ([("headers/0000/type-info", b'{"type":"x"}')], "first member must be 'header-info'"),
        ([("HEADER", None), ("headers/0000/meta-data", b"{}")], "before its type-info"),
        (
            [
                ("HEADER", None),
                ("headers/0000/type-info", b'{"type":"x"}'),
                ("scripts/ArtifactInstall_Enter_00", b""),
            ],
            "after the payload headers",
        ),
        (
            [("HEADER", None), ("headers/0001/type-info", b'{"type":"x"}')],
            "has no payload in header-info",
        ),
        ([("HEADER", None)], "has no type-info"),
        (
            [
                ("HEADER", None),
                ("headers/0000/type-info", b'{"type":"x"}'),
                ("headers/0000/files", b"{}"),
            ],
            "unexpected member 'headers/0000/files'",
        ),
        ([("HEADER", None), ("scripts/install.sh", b"")], "unexpected member 'scripts/install.sh'"),
    ],
)
def test_header_tar_order_and_names(cli, tmp_path: Path, header_members, contains: str):
    info = b'{"payloads":[{"type":"x"}],"artifact_provides":{"artifact_name":"a"},"artifact_depends":{"device_type":["d"]}}'
    parts = Parts()
    parts.header_members = [(n, info) if n == "HEADER" else (n, b) for n, b in header_members]
    parts.header_members = [
        ("header-info", b) if n == "HEADER" else (n, b) for n, b in parts.header_members
    ]
    _check(cli, tmp_path, parts.build(), 4, contains)


# --- sizes ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["version", "manifest", "header.tar.gz"])
def test_absurd_member_sizes_are_refused_before_allocation(cli, tmp_path: Path, name: str):
    members = Parts().members()
    head = b"".join(tarsafe.member(n, d) for n, d in members[: [m for m, _ in members].index(name)])
    data = head + tarsafe.member_header(name, 1 << 40) + bytes(4096)
    _check(cli, tmp_path, data, 4, "bytes, more than")


def test_absurd_size_in_a_base256_field(cli, tmp_path: Path):
    data = tarsafe.member_header("version", 1 << 62) + bytes(1024)
    _check(cli, tmp_path, data, 4, "more than")


def test_a_header_that_decompresses_to_too_much(cli, tmp_path: Path):
    obj = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(obj.compress(bytes(1 << 20)) for _ in range(65)) + obj.flush()
    members = Parts().members()
    members[2] = ("header.tar.gz", bomb)
    members[1] = ("manifest", manifest_for({"rootfs.ext4": HELLO}, "header.tar.gz", bomb))
    _check(cli, tmp_path, tar_bytes(members), 4, "decompresses to more than")


def test_a_huge_payload_size_in_the_inner_tar_is_a_truncation(cli, tmp_path: Path):
    parts = Parts(suffix="")
    members = parts.members()
    members[3] = ("data/0000.tar", tarsafe.member_header("rootfs.ext4", 1 << 40) + HELLO)
    _check(cli, tmp_path, tar_bytes(members), 4, "unexpected end of data")


# --- JSON ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "contains"),
    [
        ("header_info", b"{not json", "header-info: invalid JSON"),
        (
            "header_info",
            b'{"payloads":[{"type":"x"}],"artifact_provides":{"artifact_name":"a"},"artifact_depends":{"device_type":["d"]},"extra_field":1}',
            "header-info: unknown field 'extra_field'",
        ),
        (
            "header_info",
            b'{"payloads":[{"type":"x"}],"artifact_provides":{"artifact_name":"a"},"artifact_depends":{}}',
            "device_type is required",
        ),
        ("type_info", b'{"type":', "headers/0000/type-info: invalid JSON"),
        (
            "type_info",
            b'{"type":"x","unknown":1}',
            "headers/0000/type-info: unknown field 'unknown'",
        ),
        ("meta_data", b"[1,2]", "headers/0000/meta-data: expected a JSON object"),
        ("meta_data", b'{"a":', "headers/0000/meta-data: invalid JSON"),
    ],
)
def test_invalid_json_and_unknown_keys(
    cli, tmp_path: Path, field: str, value: bytes, contains: str
):
    info = b'{"payloads":[{"type":"x"}],"artifact_provides":{"artifact_name":"a"},"artifact_depends":{"device_type":["d"]}}'
    members = {"header_info": info, "type_info": b'{"type":"x"}', "meta_data": b"{}"}
    members[field] = value
    parts = Parts()
    parts.header_members = [
        ("header-info", members["header_info"]),
        ("headers/0000/type-info", members["type_info"]),
        ("headers/0000/meta-data", members["meta_data"]),
    ]
    _check(cli, tmp_path, parts.build(), 4, contains)


# --- manifest coverage ------------------------------------------------------------------
def test_payload_file_missing_from_the_manifest(cli, tmp_path: Path):
    parts = Parts()
    parts.data_members = [("rootfs.ext4", HELLO), ("extra.bin", b"x")]
    _check(cli, tmp_path, parts.build(), 4, "'extra.bin' has no manifest entry")


def test_manifest_entry_for_an_unknown_member(cli, tmp_path: Path):
    members = Parts().members()
    members[1] = ("manifest", members[1][1] + b"0" * 64 + b"  evil\n")
    _check(cli, tmp_path, tar_bytes(members), 4, "manifest: unexpected entry evil")


def test_manifest_without_the_header_line(cli, tmp_path: Path):
    members = Parts().members()
    members[1] = (
        "manifest",
        b"".join(line + b"\n" for line in members[1][1].splitlines() if b"header" not in line),
    )
    _check(cli, tmp_path, tar_bytes(members), 4, "no checksum for header.tar.gz")


def test_manifest_data_entry_for_a_payload_that_does_not_exist(cli, tmp_path: Path):
    members = Parts().members()
    members[1] = ("manifest", members[1][1] + b"0" * 64 + b"  data/0003/x\n")
    _check(cli, tmp_path, tar_bytes(members), 4, "belongs to no payload")


def test_trailing_garbage_after_the_archive_is_ignored_like_go(cli, tmp_path: Path):
    # Go's archive/tar stops at the end-of-archive marker; what follows is not read.
    assert _validate(cli, tmp_path, Parts().build() + b"garbage").rc == 0


# --- write and sign leave nothing behind -----------------------------------------------------
def test_write_with_a_missing_or_unreadable_input_leaves_no_output(cli, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    base = ("write", "rootfs-image", "-n", "r", "-t", "d", "-o", out / "a.mender")
    assert_one_error_line(cli(*base, "-f", tmp_path / "missing.ext4"), 3, "missing.ext4")
    assert_one_error_line(cli(*base, "-f", tmp_path), 3, "no such file")
    assert files_in(out) == set()


def test_write_to_an_unwritable_directory(cli, tmp_path: Path, rootfs: Path):
    base = ("write", "rootfs-image", "-n", "r", "-t", "d", "-f", rootfs)
    assert_one_error_line(cli(*base, "-o", tmp_path / "missing" / "a.mender"), 3, "cannot create")
    assert_one_error_line(cli(*base, "-o", rootfs / "a.mender"), 3, "cannot create")
    assert files_in(tmp_path) == {"rootfs.ext4"}


@pytest.mark.usefixtures("crypto_backend")  # both backends, same one line
@pytest.mark.parametrize("key", ["garbage", "public", "rsa1024", "ed25519", "missing"])
def test_write_with_a_bad_key_leaves_no_output(cli, tmp_path: Path, rootfs: Path, keys, key: str):
    paths = {
        "public": keys["ec"].public,
        "rsa1024": keys["rsa1024"].private,
        "ed25519": keys["ed25519"].private,
        "missing": tmp_path / "nope.key",
        "garbage": tmp_path / "garbage.key",
    }
    (tmp_path / "garbage.key").write_bytes(
        b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
    )
    before = files_in(tmp_path)
    result = cli(
        "write",
        "rootfs-image",
        "-n",
        "r",
        "-t",
        "d",
        "-f",
        rootfs,
        "-o",
        tmp_path / "a.mender",
        "-k",
        paths[key],
    )
    assert_one_error_line(result, 3)
    assert files_in(tmp_path) == before


def test_write_with_bad_meta_data_or_script_leaves_no_output(cli, tmp_path: Path, rootfs: Path):
    (tmp_path / "meta.json").write_text("[1]")
    (tmp_path / "broken.json").write_text("{")
    before = files_in(tmp_path)
    base = (
        "write",
        "module-image",
        "-T",
        "t",
        "-n",
        "r",
        "-t",
        "d",
        "-f",
        rootfs,
        "-o",
        tmp_path / "a.mender",
    )
    assert_one_error_line(cli(*base, "-m", tmp_path / "meta.json"), 3, "must be a JSON object")
    assert_one_error_line(cli(*base, "-m", tmp_path / "broken.json"), 3, "invalid JSON")
    assert_one_error_line(cli(*base, "-m", tmp_path / "nope.json"), 3, "nope.json")
    assert_one_error_line(
        cli(*base, "-s", tmp_path / "ArtifactInstall_Enter_00"), 3, "ArtifactInstall_Enter_00"
    )
    assert_one_error_line(
        cli(*base, "-s", tmp_path / "Download_Enter_00"), 2, "cannot be in an artifact"
    )
    assert_one_error_line(cli(*base, "-s", tmp_path / "install.sh"), 2, "invalid script name")
    assert files_in(tmp_path) == before


@pytest.mark.usefixtures("crypto_backend")  # both backends, same one line
def test_sign_failures_leave_the_artifact_untouched(cli, tmp_path: Path, written: Path, keys):
    original = written.read_bytes()
    assert_one_error_line(cli("sign", written, "-k", keys["ec"].public), 3)
    assert_one_error_line(cli("sign", written, "-k", tmp_path / "nope.key"), 3)
    assert_one_error_line(
        cli("sign", written, "-k", keys["ec"].private, "-o", tmp_path / "no" / "x.mender"), 3
    )
    (tmp_path / "junk.mender").write_bytes(b"junk" * 300)
    assert_one_error_line(
        cli(
            "sign", tmp_path / "junk.mender", "-k", keys["ec"].private, "-o", tmp_path / "s.mender"
        ),
        4,
    )
    assert_one_error_line(cli("sign", tmp_path / "missing.mender", "-k", keys["ec"].private), 3)
    assert written.read_bytes() == original
    assert files_in(tmp_path) == {"rootfs.ext4", "ok.mender", "junk.mender"}


def test_reading_from_a_directory_is_an_input_error(cli, tmp_path: Path):
    assert_one_error_line(cli("validate", tmp_path), 3)


def test_version_bytes_constant_is_what_the_fixture_writes():
    assert io.BytesIO(VERSION_BYTES).read() == b'{"format":"mender","version":3}'


# --- hostile headers (issue 16; docs/artifact-format.md#limits) ------------------------------
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("where", ["header-info", "type-info", "meta-data"])
def test_json_nested_100000_deep_is_one_line_not_a_recursion_error(cli, tmp_path: Path, where: str):
    parts = Parts()
    members = [
        ("header-info", json.dumps(parts.header_info).encode()),
        ("headers/0000/type-info", json.dumps(parts.type_info).encode()),
        ("headers/0000/meta-data", b'{"a":1}'),
    ]
    name = {"header-info": "header-info", "type-info": "headers/0000/type-info"}.get(
        where, "headers/0000/meta-data"
    )
    members = [(n, b'{"a":' + DEEP + b"}" if n == name else body) for n, body in members]
    parts.header_members = members
    _check(cli, tmp_path, parts.build(), 4, f"{name}: JSON nests deeper than 32 levels")


def test_json_nested_deep_in_the_version_member_is_one_line(cli, tmp_path: Path):
    members = Parts().members()
    members[0] = ("version", b"[" * 2000 + b"]" * 2000)
    _check(cli, tmp_path, tar_bytes(members), 4, "version: JSON nests deeper than 32 levels")


def test_json_over_one_mib_is_refused_before_it_is_parsed(cli, tmp_path: Path):
    big = b'{"a":"' + b"x" * (1 << 20) + b'"}'
    _check(cli, tmp_path, Parts(meta_data=big).build(), 4, "JSON of 1048584 bytes, more than")


def test_json_at_the_depth_limit_and_brackets_in_strings_are_read(cli, tmp_path: Path):
    # 32 levels in all (the object itself is one); brackets inside strings do not count
    nested = b'{"a":' + b"[" * 31 + b'"[[[[{{{{\\"]"' + b"]" * 31 + b"}"
    assert _validate(cli, tmp_path, Parts(meta_data=nested).build()).rc == 0


def test_duplicate_state_script_name_is_refused(cli, tmp_path: Path):
    parts = Parts()
    parts.header_members = [
        ("header-info", json.dumps(parts.header_info).encode()),
        ("scripts/ArtifactInstall_Enter_00", b"#!/bin/sh\necho one\n"),
        ("scripts/ArtifactInstall_Enter_00", b"#!/bin/sh\necho two\n"),
        ("headers/0000/type-info", json.dumps(parts.type_info).encode()),
        ("headers/0000/meta-data", b""),
    ]
    _check(
        cli, tmp_path, parts.build(), 4, "duplicate state script scripts/ArtifactInstall_Enter_00"
    )


# --- after the end-of-archive marker: as Go's archive/tar (tests/interop/test_artifact_trailer.py)
def _first_zero_block_then(tail: bytes) -> bytes:
    return tar_bytes(Parts().members(), trailer=False) + bytes(tarsafe.BLOCK) + tail


def test_a_non_zero_block_after_the_first_zero_block_is_refused(cli, tmp_path: Path):
    data = _first_zero_block_then(b"J" * tarsafe.BLOCK)
    _check(cli, tmp_path, data, 4, "artifact: data after the tar's end-of-archive marker")


def test_a_part_block_after_the_first_zero_block_is_truncated(cli, tmp_path: Path):
    _check(cli, tmp_path, _first_zero_block_then(bytes(100)), 4, "unexpected end of data")


def test_a_non_zero_block_after_the_end_of_a_payload_tar_is_refused(cli, tmp_path: Path):
    parts = Parts()
    data_tar = tar_bytes(list(parts.files.items()), trailer=False) + bytes(512) + b"J" * 512
    members = parts.members()
    members[3] = ("data/0000.tar.gz", gzip.compress(data_tar, mtime=0))
    _check(cli, tmp_path, tar_bytes(members), 4, "data/0000.tar.gz: data after the tar's")


@pytest.mark.parametrize(
    "tail", [b"", bytes(tarsafe.BLOCK), bytes(tarsafe.BLOCK) + bytes(20 * tarsafe.BLOCK)]
)
def test_the_end_marker_alone_one_block_or_padded_with_zeros_is_read(
    cli, tmp_path: Path, tail: bytes
):
    assert _validate(cli, tmp_path, _first_zero_block_then(tail)).rc == 0
