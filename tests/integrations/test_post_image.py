"""buildroot-ext/board/*/post-image.sh run for real on a small rootfs.

This is the script Buildroot runs after every build and the one the QEMU
tests run on their Debian rootfs: pyupdate-image (boot script, env, slot),
genimage (Debian) for the disk, pyupdate-artifact to write and sign.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
from integrations_helpers import BR_EXT, REPO, run, tool_env

from pyupdate_agent.config import parse_config
from pyupdate_host.image import board as image_board
from pyupdate_host.image import disk

pytestmark = pytest.mark.uboot

X86 = BR_EXT / "board" / "qemu_x86_64" / "post-image.sh"
AARCH64 = BR_EXT / "board" / "qemu_aarch64" / "post-image.sh"
SHIPPED_X86 = REPO / "artifact_tool/host/src/pyupdate_host/image/boards/qemu-x86_64.json"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("keys")
    key, pub = d / "private.pem", d / "public.pem"
    assert (
        run(
            [
                "openssl",
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                str(key),
            ]
        ).returncode
        == 0
    )
    assert run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)]).returncode == 0
    return key, pub


def make_binaries(tmp: Path, kernel: str = "/boot/bzImage", extra: bytes = b"") -> Path:
    """BINARIES_DIR as Buildroot leaves it: rootfs.tar (root-owned entries)."""
    images = tmp / "images"
    images.mkdir()
    root = tmp / "target"
    (root / "etc").mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "etc" / "os-release").write_text("NAME=Buildroot\n")
    (root / kernel.lstrip("/")).write_bytes(b"kernel")
    if extra:
        (root / "big.bin").write_bytes(extra)
    with tarfile.open(images / "rootfs.tar", "w") as tar:
        tar.add(
            root,
            arcname=".",
            filter=lambda ti: (setattr(ti, "uid", 0), setattr(ti, "gid", 0), ti)[2],
        )
    return images


def post_image(script: Path, images: Path, **env: str):
    full = tool_env()
    for name in list(full):
        if name.startswith(("PYUPDATE_", "BR2_")):
            del full[name]
    full.update(env)
    return run([str(script), str(images)], env=full)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, keys) -> Path:
    images = make_binaries(tmp_path_factory.mktemp("x86"))
    result = post_image(
        X86,
        images,
        PYUPDATE_ARTIFACT_NAME="release-1",
        PYUPDATE_DEVICE_TYPE="qemu-x86_64",
        PYUPDATE_SIGNING_KEY=str(keys[0]),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(images / "disk.img"), str(images / "release-1.mender")]
    return images


def test_disk_layout_is_the_image_tools_layout(built: Path):
    """genimage.cfg must lay out exactly what pyupdate-image's disk assembly would."""
    board = image_board.load_board(str(built / "pyupdate" / "board.json"))
    table = json.loads(run(["sfdisk", "-J", str(built / "disk.img")]).stdout)["partitiontable"]
    assert table["label"] == "dos"
    got = [
        (p["start"], p["size"], p["type"], p.get("bootable", False)) for p in table["partitions"]
    ]
    want = [
        (p.start_mib * 2048, p.size_mib * 2048, p.type_id, p.bootable) for p in disk.layout(board)
    ]
    assert got == want


def test_both_slots_hold_the_slot_image(built: Path):
    slot = (built / "pyupdate" / "rootfs.ext4").read_bytes()
    board = image_board.load_board(str(built / "pyupdate" / "board.json"))
    with (built / "disk.img").open("rb") as f:
        for part in disk.layout(board)[1:3]:
            f.seek(part.start_mib * MIB)
            assert f.read(len(slot)) == slot
    info = run(
        [
            "debugfs",
            "-R",
            "cat /etc/pyupdate/artifact_info",
            str(built / "pyupdate" / "rootfs.ext4"),
        ]
    )
    assert info.stdout == "artifact_name=release-1\n"


def test_boot_partition_env_reads_with_fw_printenv(built: Path, tmp_path: Path):
    for name in ("boot.scr", "uboot.env", "uboot-redund.env"):
        got = run(
            ["mcopy", "-n", "-i", f"{built / 'disk.img'}@@1M", f"::{name}", str(tmp_path / name)]
        )
        assert got.returncode == 0, got.stderr
    assert (tmp_path / "boot.scr").read_bytes() == (built / "pyupdate" / "boot.scr").read_bytes()
    cfg = tmp_path / "fw_env.config"
    cfg.write_text(
        f"{tmp_path / 'uboot.env'} 0x0 0x4000\n{tmp_path / 'uboot-redund.env'} 0x0 0x4000\n"
    )
    env = run(["fw_printenv", "-c", str(cfg)])
    assert env.returncode == 0 and "mender_boot_part=2" in env.stdout


@pytest.mark.peers
def test_artifact_is_signed_and_read_by_mender_artifact(built: Path, keys):
    result = run(["mender-artifact", "read", "-k", str(keys[1]), str(built / "release-1.mender")])
    assert result.returncode == 0, result.stderr
    assert "Signature: signed and verified correctly" in result.stdout
    assert "qemu-x86_64" in result.stdout and "release-1" in result.stdout


def test_aarch64_board_and_buildroot_config(tmp_path: Path):
    """Settings come from $BR2_CONFIG when the environment does not set them."""
    images = make_binaries(tmp_path, kernel="/boot/Image")
    config = tmp_path / ".config"
    config.write_text(
        'BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_DEVICE_TYPE="qemu-aarch64"\n'
        'BR2_PYUPDATE_ARTIFACT_NAME="br-2"\nBR2_PYUPDATE_ARTIFACT_SIGNING_KEY=""\n'
        "# BR2_PYUPDATE_SIGNING_REQUIRED is not set\n"
    )
    result = post_image(AARCH64, images, BR2_CONFIG=str(config))
    assert result.returncode == 0, result.stderr
    board = json.loads((images / "pyupdate" / "board.json").read_text())
    assert board["device_type"] == "qemu-aarch64"
    assert board["uboot"]["binary"] == f"{images}/u-boot.bin"
    assert (images / "br-2.mender").is_file()
    assert "booti" in (images / "pyupdate" / "boot.cmd").read_text()


def test_debian_rootfs_with_the_shipped_board(tmp_path: Path):
    """How the QEMU tests call it: their rootfs and the shipped board config."""
    rootfs = tmp_path / "debian-rootfs"
    (rootfs / "boot").mkdir(parents=True)
    (rootfs / "boot" / "vmlinuz").write_bytes(b"k")
    (rootfs / "boot" / "initrd.img").write_bytes(b"i")
    images = tmp_path / "out"
    images.mkdir()
    result = post_image(
        X86,
        images,
        PYUPDATE_BOARD=str(SHIPPED_X86),
        PYUPDATE_ROOTFS=str(rootfs),
        PYUPDATE_ARTIFACT_NAME="deb-1",
    )
    assert result.returncode == 0, result.stderr
    assert (images / "deb-1.mender").is_file()
    assert "/boot/initrd.img" in (images / "pyupdate" / "boot.cmd").read_text()


@pytest.mark.parametrize(
    ("env", "starts"),
    [
        (
            {"PYUPDATE_SIGNING_KEY": "/nonexistent/key.pem"},
            "post-image.sh: PYUPDATE_SIGNING_KEY: /nonexistent/key.pem: file not found",
        ),
        (
            {"PYUPDATE_DEVICE_TYPE": "qemu x86"},
            "post-image.sh: PYUPDATE_DEVICE_TYPE: 'qemu x86' must be one word",
        ),
        (
            {"PYUPDATE_ARTIFACT_NAME": "release 1"},
            "post-image.sh: PYUPDATE_ARTIFACT_NAME: 'release 1' must be one word",
        ),
        (
            {"PYUPDATE_SIGNING_REQUIRED": "y"},
            "post-image.sh: PYUPDATE_SIGNING_KEY: not set, and signing is required",
        ),
        (
            {"PYUPDATE_ROOTFS": "/nonexistent"},
            "post-image.sh: PYUPDATE_ROOTFS: /nonexistent: not found",
        ),
    ],
    ids=["key", "device-type", "name", "signing-required", "rootfs"],
)
def test_bad_input_stops_with_one_line(tmp_path: Path, env: dict[str, str], starts: str):
    images = make_binaries(tmp_path)
    base = {"PYUPDATE_ARTIFACT_NAME": "r1", "PYUPDATE_DEVICE_TYPE": "qemu-x86_64"}
    result = post_image(X86, images, **{**base, **env})
    assert result.returncode == 2
    assert result.stderr.strip().startswith(starts)
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (images / "disk.img").exists()


def test_rootfs_larger_than_the_slot_names_the_size(tmp_path: Path):
    board = json.loads(SHIPPED_X86.read_text())
    board["partitions"]["rootfs_mib"] = 16
    small = tmp_path / "small.json"
    small.write_text(json.dumps(board))
    images = make_binaries(tmp_path, extra=os.urandom(20 * MIB))
    result = post_image(X86, images, PYUPDATE_BOARD=str(small), PYUPDATE_ARTIFACT_NAME="r1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "rootfs_mib" in lines[0]
    assert not (images / "disk.img").exists()


def test_data_partition_holds_the_agent_data_dir(built: Path):
    listing = run(["debugfs", "-R", "stat /pyupdate", str(built / "pyupdate" / "data.ext4")])
    assert "Type: directory" in listing.stdout and "Mode:  0700" in listing.stdout
    label = run(
        [
            "/usr/sbin/e2label" if Path("/usr/sbin/e2label").exists() else "e2label",
            str(built / "pyupdate" / "data.ext4"),
        ]
    )
    assert label.stdout.strip() == "data"


@pytest.mark.parametrize("board", ["qemu_x86_64", "qemu_aarch64"])
def test_post_build_links_the_data_dir_and_installs_the_verify_key(
    tmp_path: Path, keys, board: str
):
    target = tmp_path / "target"
    conf = target / "etc" / "pyupdate" / "pyupdate.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text((BR_EXT / "package" / "python-pyupdate-agent" / "pyupdate.conf").read_text())
    config = tmp_path / ".config"
    config.write_text(f'BR2_PYUPDATE_ARTIFACT_VERIFY_KEY="{keys[1]}"\n')
    script = BR_EXT / "board" / board / "post-build.sh"
    for _ in range(2):  # Buildroot reruns post-build on every make: it must be idempotent
        result = run(
            [str(script), str(target)],
            env={**tool_env(), "TARGET_DIR": str(target), "BR2_CONFIG": str(config)},
        )
        assert result.returncode == 0, result.stderr
    assert os.readlink(target / "var" / "lib" / "pyupdate") == "/data/pyupdate"
    assert (target / "etc/pyupdate/artifact-verify-key.pem").read_bytes() == keys[1].read_bytes()
    parsed = parse_config(conf.read_text(), str(conf))
    assert parsed.artifact_verify_keys == ("/etc/pyupdate/artifact-verify-key.pem",)
    assert (target / "boot" / "uboot").is_dir() and (target / "data").is_dir()


def test_post_build_names_a_missing_verify_key(tmp_path: Path):
    target = tmp_path / "target"
    target.mkdir()
    env = {
        **tool_env(),
        "TARGET_DIR": str(target),
        "PYUPDATE_VERIFY_KEY": "/nonexistent/public.pem",
    }
    result = run([str(BR_EXT / "board" / "qemu_x86_64" / "post-build.sh"), str(target)], env=env)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "post-build.sh: BR2_PYUPDATE_ARTIFACT_VERIFY_KEY: /nonexistent/public.pem: file not found"
    )
