"""`pyupdate-image build`: a real disk from a tiny rootfs, inspected with the real tools."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pyupdate_artifact.reader import read_artifact
from pyupdate_artifact.verify import load_verifier
from pyupdate_host.image.cli import main

pytestmark = pytest.mark.uboot
MIB = 1024 * 1024


def small_board(tmp_path: Path, **uboot) -> Path:
    src = resources.files("pyupdate_host.image").joinpath("boards", "qemu-x86_64.json")
    raw = json.loads(src.read_text())
    raw["partitions"] = {"boot_mib": 16, "rootfs_mib": 16, "data_mib": 8}
    raw["uboot"].update(uboot)
    path = tmp_path / "small.json"
    path.write_text(json.dumps(raw))
    return path


def tiny_rootfs(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "boot/vmlinuz").write_bytes(b"kernel")
    return root


def key_pair(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = tmp_path / "key.pem", tmp_path / "key.pub"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


def run(*argv: str | Path) -> str:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("build")
    priv, pub = key_pair(tmp)
    out = tmp / "out"
    rc = main(
        [
            "build",
            "--board",
            str(small_board(tmp)),
            "--rootfs",
            str(tiny_rootfs(tmp / "r")),
            "--name",
            "release-1",
            "--out",
            str(out),
            "--key",
            str(priv),
        ]
    )
    assert rc == 0
    return out, pub


def test_disk_has_the_fixed_partition_layout(built):
    out, _ = built
    table = json.loads(run("sfdisk", "-J", out / "disk.img"))["partitiontable"]
    parts = [(p["start"] // 2048, p["size"] // 2048, p["type"]) for p in table["partitions"]]
    assert parts == [(1, 16, "c"), (17, 16, "83"), (33, 16, "83"), (49, 8, "83")]
    assert table["partitions"][0].get("bootable") is True
    assert (out / "disk.img").stat().st_size == 57 * MIB


def test_boot_partition_holds_script_and_both_env_copies(built, tmp_path):
    out, _ = built
    listing = run("mdir", "-b", "-i", f"{out / 'disk.img'}@@1M", "::")
    names = sorted(Path(line).name for line in listing.split())
    assert names == ["boot.scr", "uboot-redund.env", "uboot.env"]
    run("mcopy", "-i", f"{out / 'disk.img'}@@1M", "::uboot.env", "::uboot-redund.env", tmp_path)
    cfg = tmp_path / "fw_env.config"
    cfg.write_text(f"{tmp_path}/uboot.env 0x0 0x4000\n{tmp_path}/uboot-redund.env 0x0 0x4000\n")
    env = run("fw_printenv", "-c", cfg)
    assert "mender_boot_part=2\n" in env and "upgrade_available=0\n" in env


def test_both_slots_hold_the_rootfs_with_the_artifact_name(built, tmp_path):
    out, _ = built
    for start in (17, 33):
        slot = tmp_path / f"slot{start}.ext4"
        run("dd", f"if={out / 'disk.img'}", f"of={slot}", "bs=1M", f"skip={start}", "count=16")
        info = run("debugfs", "-R", "cat /etc/pyupdate/artifact_info", slot)
        assert info == "artifact_name=release-1\n"


def test_manifest_checks_with_sha256sum(built):
    out, _ = built
    done = subprocess.run(["sha256sum", "-c", "manifest.sha256"], cwd=out, capture_output=True)
    assert done.returncode == 0
    assert b"disk.img: OK" in done.stdout


def test_artifacts_are_signed_and_readable(built):
    out, pub = built
    header = read_artifact(
        out / "release-1.mender", verify_keys=[load_verifier(pub)], require_signature=True
    )
    assert header.artifact_name == "release-1"
    assert header.device_types == ["qemu-x86_64"] or tuple(header.device_types) == ("qemu-x86_64",)
    assert header.type_provides["rootfs-image.version"] == "release-1"
    boot = read_artifact(out / "release-1-bootstrap.mender", verify_keys=[load_verifier(pub)])
    assert boot.payloads[0].type is None


def test_data_partition_holds_the_bootstrap_with_the_first_slots_checksum(built, tmp_path):
    """The agent's first start records these provides (agent/bootstrap.py): a delta can
    be the device's first update."""
    import hashlib

    out, _ = built
    data = tmp_path / "data.ext4"
    run("dd", f"if={out / 'disk.img'}", f"of={data}", "bs=1M", "skip=49", "count=8")
    boot = tmp_path / "bootstrap.mender"
    run("debugfs", "-R", f"dump /pyupdate/bootstrap.mender {boot}", data)
    assert boot.read_bytes() == (out / "release-1-bootstrap.mender").read_bytes()
    header = read_artifact(boot)
    slot_a = hashlib.sha256((out / "rootfs.ext4").read_bytes()).hexdigest()
    assert header.type_provides == {
        "rootfs-image.version": "release-1",
        "rootfs-image.checksum": slot_a,
    }
    mode = run("debugfs", "-R", "stat /pyupdate", data)
    assert "Mode:  0700" in mode, mode


def test_output_dir_has_only_products(built):
    out, _ = built
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def _no_disk(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def test_missing_uboot_binary_names_the_field_and_writes_nothing(tmp_path, capsys):
    board = small_board(tmp_path, binary="/nonexistent/u-boot.rom")
    out = tmp_path / "out"
    rc = main(
        [
            "build",
            "--board",
            str(board),
            "--rootfs",
            str(tiny_rootfs(tmp_path / "r")),
            "--name",
            "v",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "uboot.binary" in err and "/nonexistent/u-boot.rom" in err
    assert _no_disk(out)


def test_rootfs_too_big_for_slot_leaves_no_disk(tmp_path, capsys):
    root = tiny_rootfs(tmp_path / "r")
    (root / "big").write_bytes(os.urandom(18 * MIB))
    out = tmp_path / "out"
    rc = main(
        [
            "build",
            "--board",
            str(small_board(tmp_path)),
            "--rootfs",
            str(root),
            "--name",
            "v",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "partitions.rootfs_mib = 16" in err
    assert _no_disk(out)


def test_missing_tool_is_named_with_its_package(tmp_path, capsys, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkimage", "mkenvimage", "fw_printenv", "mkfs.ext4", "debugfs", "e2fsck"):
        os.symlink(subprocess.check_output(["which", tool], text=True).strip(), bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    out = tmp_path / "out"
    rc = main(
        [
            "build",
            "--board",
            str(small_board(tmp_path)),
            "--rootfs",
            str(tmp_path),
            "--name",
            "v",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 3
    assert err == "error: resize2fs: not found in PATH (Debian package e2fsprogs)\n"
    assert _no_disk(out)


def test_failure_in_a_late_step_removes_the_scratch_dir(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "blob").write_bytes(os.urandom(9 * MIB))
    out = tmp_path / "out"
    root = tiny_rootfs(tmp_path / "r")
    rc = main(
        [
            "build",
            "--board",
            str(small_board(tmp_path)),
            "--rootfs",
            str(root),
            "--name",
            "v",
            "--out",
            str(out),
            "--data-dir",
            str(data),
        ]
    )
    assert rc == 2
    assert "partitions.data_mib = 8" in capsys.readouterr().err
    assert _no_disk(out)
