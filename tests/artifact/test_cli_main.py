"""`pyupdate-artifact` in-process: every verb, mender-artifact's flags, exit codes, output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from artifact_helpers import HELLO_SHA, assert_one_error_line, files_in

from pyupdate_host.cli.main import main


def _json(cli, path: Path, *extra) -> dict:
    result = cli("read", "--json", path, *extra)
    assert result.rc == 0, result
    assert result.err == ""
    return json.loads(result.out)


def test_write_rootfs_image_defaults_match_mender_artifact(cli, tmp_path: Path, rootfs: Path):
    out = tmp_path / "a.mender"
    result = cli(
        "write", "rootfs-image", "-n", "release-1", "-t", "qemux86-64", "-f", rootfs, "-o", out
    )
    assert (result.rc, result.out, result.err) == (0, "", "")
    doc = _json(cli, out)
    assert doc["name"] == "release-1"
    assert doc["version"] == 3
    assert doc["device_types"] == ["qemux86-64"]
    assert doc["provides"] == {
        "rootfs-image.checksum": HELLO_SHA,
        "rootfs-image.version": "release-1",
    }
    assert doc["clears_provides"] == ["artifact_group", "rootfs_image_checksum", "rootfs-image.*"]
    assert doc["signature"] == {"present": False, "verified": False}
    assert doc["payloads"][0]["files"] == [{"name": "rootfs.ext4", "size": 13, "sha256": HELLO_SHA}]


def test_write_rootfs_image_every_option(cli, tmp_path: Path, rootfs: Path, keys):
    script = tmp_path / "ArtifactReboot_Leave_10_check"
    script.write_text("#!/bin/sh\nexit 0\n")
    out = tmp_path / "a.mender"
    result = cli(
        "write", "rootfs-image", "-n", "release-2", "-t", "devA", "-t", "devB", "-f", rootfs, "-o", out,
        "-k", keys["rsa3072"].private, "--compression", "lzma",
        "-p", "custom.key:val:with:colons", "-d", "dep.key:dval", "-N", "release-1", "-N", "release-0",
        "-g", "grp1", "-G", "grp0", "--software-name", "os", "--software-version", "2.0",
        "--clears-provides", "foo.*", "-s", script,
    )  # fmt: skip
    assert result.rc == 0, result
    doc = _json(cli, out, "-k", keys["rsa3072"].public)
    assert doc["signature"] == {"present": True, "verified": True}
    assert doc["compression"] == "lzma"
    assert doc["artifact_provides"] == {"artifact_name": "release-2", "artifact_group": "grp1"}
    assert doc["artifact_depends"] == {
        "device_type": ["devA", "devB"],
        "artifact_name": ["release-1", "release-0"],
        "artifact_group": ["grp0"],
    }
    assert doc["provides"] == {
        "custom.key": "val:with:colons",
        "rootfs-image.os.version": "2.0",
        "rootfs-image.checksum": HELLO_SHA,
    }
    assert doc["depends"] == {
        "artifact_name": ["release-1", "release-0"],
        "artifact_group": ["grp0"],
        "dep.key": "dval",
    }
    # as mender-artifact 3.9: with --software-name only the prefix pattern is a default
    assert doc["clears_provides"] == ["foo.*", "rootfs-image.os.*"]
    assert doc["scripts"] == ["ArtifactReboot_Leave_10_check"]


def test_write_rootfs_checksum_and_default_switches(cli, tmp_path: Path, rootfs: Path):
    out = tmp_path / "a.mender"
    base = ("write", "rootfs-image", "-n", "r", "-t", "d", "-f", rootfs, "-o", out)
    assert cli(*base, "--legacy-rootfs-image-checksum", "--software-filesystem", "fs").rc == 0
    doc = _json(cli, out)
    assert doc["provides"] == {"rootfs_image_checksum": HELLO_SHA, "fs.version": "r"}
    assert doc["clears_provides"] == ["fs.*"]
    assert cli(*base, "--no-checksum-provide", "--no-default-software-version").rc == 0
    doc = _json(cli, out)
    assert doc["provides"] == {}
    assert doc["clears_provides"] is None
    assert cli(*base, "--no-default-clears-provides").rc == 0
    assert _json(cli, out)["clears_provides"] is None


def test_write_module_image_with_meta_data_and_several_files(cli, tmp_path: Path, keys):
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.conf").write_text("B" * 5000)
    meta = tmp_path / "meta.json"
    meta.write_text('{"n": 3, "list": ["x", 1], "dest_dir": "/opt/app"}')
    out = tmp_path / "m.mender"
    result = cli(
        "write", "module-image", "-T", "single-file", "-n", "app-1.0", "-t", "devA",
        "-f", tmp_path / "a.txt", "-f", tmp_path / "b.conf", "-m", meta, "-o", out,
        "-k", keys["ec"].private, "--compression", "none",
    )  # fmt: skip
    assert result.rc == 0, result
    doc = _json(cli, out, "-k", keys["ec"].public)
    payload = doc["payloads"][0]
    assert payload["type"] == "single-file"
    assert payload["meta_data"] == {"dest_dir": "/opt/app", "list": ["x", 1], "n": 3}
    assert [(f["name"], f["size"]) for f in payload["files"]] == [("a.txt", 1), ("b.conf", 5000)]
    assert doc["provides"] == {"rootfs-image.single-file.version": "app-1.0"}
    assert doc["clears_provides"] == ["rootfs-image.single-file.*"]


def test_write_bootstrap_artifact(cli, tmp_path: Path):
    out = tmp_path / "b.mender"
    assert (
        cli(
            "write",
            "bootstrap-artifact",
            "-n",
            "boot-1",
            "-t",
            "qemux86-64",
            "-p",
            "k:v",
            "-o",
            out,
        ).rc
        == 0
    )
    doc = _json(cli, out)
    assert doc["payloads"][0]["type"] is None
    assert doc["payloads"][0]["files"] == []
    assert doc["provides"] == {"k": "v"}
    assert doc["clears_provides"] is None


def test_write_zstd(cli, tmp_path: Path, rootfs: Path):
    out = tmp_path / "z.mender"
    assert (
        cli(
            "write",
            "rootfs-image",
            "-n",
            "r",
            "-t",
            "d",
            "-f",
            rootfs,
            "-o",
            out,
            "--compression",
            "zstd",
        ).rc
        == 0
    )
    assert _json(cli, out)["compression"] == "zstd"


def test_read_text_summary_and_validate_message(cli, tmp_path: Path, rootfs: Path, keys):
    out = tmp_path / "a.mender"
    cli(
        "write",
        "rootfs-image",
        "-n",
        "release-1",
        "-t",
        "qemux86-64",
        "-f",
        rootfs,
        "-o",
        out,
        "-k",
        keys["ec"].private,
    )
    result = cli("read", out)
    assert result.rc == 0 and result.err == ""
    assert "  Name: release-1\n" in result.out
    assert "Signature: signed but no key for verification provided" in result.out
    assert f"checksum: {HELLO_SHA}" in result.out
    assert "signed and verified correctly" in cli("read", out, "-k", keys["ec"].public).out
    result = cli("validate", out, "-k", keys["ec"].public)
    assert (result.rc, result.out, result.err) == (
        0,
        f"Artifact file '{out}' validated successfully\n",
        "",
    )


def test_sign_verb_signs_in_place_and_to_another_path(cli, tmp_path: Path, rootfs: Path, keys):
    out = tmp_path / "a.mender"
    cli("write", "rootfs-image", "-n", "r", "-t", "d", "-f", rootfs, "-o", out)
    assert cli("sign", out, "-k", keys["rsa2048"].private, "-o", tmp_path / "s.mender").rc == 0
    assert _json(cli, tmp_path / "s.mender", "-k", keys["rsa2048"].public)["signature"]["verified"]
    assert cli("sign", out, "-k", keys["ec"].private).rc == 0
    assert _json(cli, out, "-k", keys["ec"].public)["signature"]["verified"]
    assert files_in(tmp_path) == {"rootfs.ext4", "a.mender", "s.mender"}


def test_no_progress_bar_when_stderr_is_not_a_terminal(cli, tmp_path: Path):
    image = tmp_path / "img"
    image.write_bytes(bytes(3 << 20))
    result = cli(
        "write", "rootfs-image", "-n", "r", "-t", "d", "-f", image, "-o", tmp_path / "a.mender"
    )
    assert result.err == ""
    assert cli("validate", tmp_path / "a.mender").err == ""


# --- exit codes (docs: 0 ok, 2 usage, 3 input/key/output, 4 format, 5 signature) ------
def test_exit_codes(cli, tmp_path: Path, rootfs: Path, keys):
    out = tmp_path / "a.mender"
    signed = tmp_path / "s.mender"
    base = ("write", "rootfs-image", "-n", "r", "-t", "d", "-f", rootfs)
    assert cli(*base, "-o", out).rc == 0
    assert cli(*base, "-o", signed, "-k", keys["ec"].private).rc == 0
    assert_one_error_line(cli(*base, "-o", out, "--compression", "bz2"), 2, "unknown compression")
    assert_one_error_line(
        cli("write", "rootfs-image", "-n", "r", "-o", out, "-f", rootfs), 2, "required"
    )
    assert_one_error_line(cli("frobnicate"), 2)
    assert_one_error_line(cli(*base, "-o", out, "-p", "novalue"), 2, "expected KEY:VALUE")
    assert_one_error_line(cli(*base, "-o", out, "-v", "2"), 2, "version 2 is not supported")
    assert_one_error_line(cli(*base, "-o", out, "-f", rootfs), 2, "exactly one --file")
    assert_one_error_line(cli("validate", tmp_path / "nope.mender"), 3, "nope.mender")
    assert_one_error_line(cli("validate", out, "-k", tmp_path / "nope.pub"), 3, "cannot read key")
    assert_one_error_line(cli("validate", out, "-k", keys["ec"].public), 5, "not signed")
    assert_one_error_line(
        cli("validate", signed, "-k", keys["ec-other"].public), 5, "does not verify"
    )
    (tmp_path / "junk.mender").write_bytes(b"x" * 3000)
    assert_one_error_line(cli("validate", tmp_path / "junk.mender"), 4)


def test_version_flag_and_help_exit_zero(cli):
    result = cli("--version")
    assert result.rc == 0 and result.out.startswith("pyupdate-artifact ")
    assert cli("write", "rootfs-image", "--help").rc == 0


def test_internal_errors_are_one_line_unless_debug(
    monkeypatch, capsys, tmp_path: Path, rootfs: Path
):
    from pyupdate_host.cli import validate

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(validate, "run", broken)
    assert main(["validate", str(rootfs)]) == 1
    err = capsys.readouterr().err
    assert err == "error: internal error: RuntimeError: boom (rerun with --debug)\n"
    with pytest.raises(RuntimeError):
        main(["--debug", "validate", str(rootfs)])


def test_write_refuses_meta_data_the_reader_would_refuse(cli, tmp_path: Path):
    (tmp_path / "a.txt").write_text("A")
    meta = tmp_path / "meta.json"
    meta.write_bytes(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    out = tmp_path / "m.mender"
    result = cli(
        "write", "module-image", "-T", "t", "-n", "n", "-t", "d",
        "-f", tmp_path / "a.txt", "-m", meta, "-o", out,
    )  # fmt: skip
    assert_one_error_line(result, 3, "meta.json: JSON nests deeper than 32 levels")
    assert not out.exists()


def test_write_refuses_the_same_state_script_twice(cli, tmp_path: Path, rootfs: Path):
    first, second = tmp_path / "one", tmp_path / "two"
    for folder in (first, second):
        folder.mkdir()
        (folder / "ArtifactInstall_Enter_00").write_text("#!/bin/sh\n")
    result = cli(
        "write", "rootfs-image", "-n", "r", "-t", "d", "-f", rootfs, "-o", tmp_path / "a.mender",
        "-s", first / "ArtifactInstall_Enter_00", "-s", second / "ArtifactInstall_Enter_00",
    )  # fmt: skip
    assert_one_error_line(result, 2, "script ArtifactInstall_Enter_00 is given twice")
