"""`pyupdate-artifact delta` end to end: two artifacts written by our CLI, a signed
delta between them, read back and applied to OLD's image to give NEW's, and Debian's
mender-artifact 3.9 reads and validates it (docs/artifact-tool.md#delta)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from artifact_delta_helpers import BLOCK, code_like, rng, sha, shift_addresses
from artifact_helpers import assert_one_error_line

from pyupdate_artifact.delta import DELTA_FILE, DELTA_TYPE, DeltaApplier
from pyupdate_artifact.model import Payload
from pyupdate_artifact.reader import read_artifact
from pyupdate_artifact.verify import load_verifier


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("images")
    r = rng(21)
    old = code_like(r, 120 * BLOCK) + bytes(200 * BLOCK) + r.randbytes(30 * BLOCK)
    new = shift_addresses(old[: 120 * BLOCK], r) + old[120 * BLOCK :] + r.randbytes(9000)
    (folder / "v1").mkdir()
    (folder / "v2").mkdir()
    (folder / "v1" / "rootfs.ext4").write_bytes(old)
    (folder / "v2" / "rootfs.ext4").write_bytes(new)
    return folder / "v1" / "rootfs.ext4", folder / "v2" / "rootfs.ext4"


def _write(cli, image: Path, out: Path, name: str, *extra: str) -> Path:
    result = cli(
        "write", "rootfs-image", "-f", image, "-n", name, "-t", "qemux86-64", "-o", out, *extra
    )
    assert result.rc == 0, result
    return out


@pytest.fixture
def artifacts(cli, images, tmp_path: Path) -> tuple[Path, Path]:
    old = _write(cli, images[0], tmp_path / "old.mender", "release-1", "--compression", "gzip")
    new = _write(
        cli, images[1], tmp_path / "new.mender", "release-2", "-p", "app.version:2", "-g", "beta"
    )
    return old, new


class _ApplySink:
    def __init__(self, base: Path, expect_base: str, expect_result: str) -> None:
        self.base = open(base, "rb")  # noqa: SIM115
        self.result = bytearray()
        self.applier = DeltaApplier(
            self.base, self.result.extend, expect_base=expect_base, expect_result=expect_result
        )

    def open_file(self, payload: Payload, name: str, size: int) -> _ApplySink:
        assert (payload.type, name) == (DELTA_TYPE, DELTA_FILE)
        return self

    def write(self, data: bytes) -> None:
        self.applier.write(data)

    def finish(self) -> None:
        self.applier.finish()
        self.base.close()

    def abort(self) -> None:
        self.base.close()


def test_signed_delta_applies_to_old_and_gives_new(cli, keys, images, artifacts, tmp_path):
    old, new = artifacts
    delta = tmp_path / "delta.mender"
    result = cli("delta", old, new, "-o", delta, "-k", keys["rsa2048"].private)
    assert (result.rc, result.out, result.err) == (0, "", "")
    assert delta.stat().st_size < new.stat().st_size // 5
    old_sha, new_sha = sha(images[0].read_bytes()), sha(images[1].read_bytes())
    sink = _ApplySink(images[0], old_sha, new_sha)
    header = read_artifact(
        delta,
        verify_keys=[load_verifier(keys["rsa2048"].public)],
        require_signature=True,
        sink=sink,
    )
    assert sha(bytes(sink.result)) == new_sha
    (payload,) = header.payloads
    assert payload.type == DELTA_TYPE
    assert header.artifact_name == "release-2"
    assert header.artifact_group == "beta"
    assert header.device_types == ("qemux86-64",)
    assert payload.type_info.depends == {"rootfs-image.checksum": old_sha}
    new_header = read_artifact(new)
    expected = dict(new_header.type_provides)
    assert expected["rootfs-image.checksum"] == new_sha
    assert payload.type_info.provides == expected
    assert payload.type_info.clears_provides == new_header.payloads[0].type_info.clears_provides
    assert header.compression == "none"


def test_delta_not_smaller_writes_nothing_and_exits_3(cli, tmp_path: Path) -> None:
    r = rng(22)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "rootfs.ext4").write_bytes(r.randbytes(3 * BLOCK))
    (tmp_path / "b" / "rootfs.ext4").write_bytes(r.randbytes(3 * BLOCK))
    old = _write(cli, tmp_path / "a" / "rootfs.ext4", tmp_path / "old.mender", "r1")
    new = _write(cli, tmp_path / "b" / "rootfs.ext4", tmp_path / "new.mender", "r2")
    before = set(tmp_path.iterdir())
    result = cli("delta", old, new, "-o", tmp_path / "delta.mender")
    assert_one_error_line(result, rc=3, contains="not smaller")
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("case", ["not-artifact", "module-image", "no-checksum", "device-type"])
def test_bad_input_is_one_line(cli, images, artifacts, tmp_path: Path, case: str) -> None:
    old, new = artifacts
    if case == "not-artifact":
        old = tmp_path / "junk.mender"
        old.write_bytes(b"not a tar at all" * 100)
        contains = "OLD"
    elif case == "module-image":
        result = cli(
            "write", "module-image", "-T", "single-file", "-f", images[0], "-n", "m1",
            "-t", "qemux86-64", "-o", tmp_path / "module.mender",
        )  # fmt: skip
        assert result.rc == 0, result
        old, contains = tmp_path / "module.mender", "rootfs-image"
    elif case == "no-checksum":
        old = _write(cli, images[0], tmp_path / "plain.mender", "r1", "--no-checksum-provide")
        contains = "rootfs-image.checksum"
    else:
        old = tmp_path / "other.mender"
        result = cli(
            "write", "rootfs-image", "-f", images[0], "-n", "r1", "-t", "raspberrypi4",
            "-o", old,
        )  # fmt: skip
        assert result.rc == 0, result
        contains = "device types"
    before = set(tmp_path.iterdir())
    result = cli("delta", old, new, "-o", tmp_path / "delta.mender")
    assert_one_error_line(result, contains=contains)
    assert set(tmp_path.iterdir()) == before


def test_same_image_is_refused(cli, images, tmp_path: Path) -> None:
    one = _write(cli, images[0], tmp_path / "one.mender", "r1")
    two = _write(cli, images[0], tmp_path / "two.mender", "r2")
    assert_one_error_line(cli("delta", one, two, "-o", tmp_path / "d.mender"), contains="same")


@pytest.mark.peers
@pytest.mark.skipif(shutil.which("mender-artifact") is None, reason="needs mender-artifact")
def test_mender_artifact_reads_and_validates_the_delta(cli, keys, artifacts, tmp_path) -> None:
    old, new = artifacts
    delta = tmp_path / "delta.mender"
    assert cli("delta", old, new, "-o", delta, "-k", keys["rsa2048"].private).rc == 0

    def mender(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["mender-artifact", *map(str, argv)], capture_output=True, text=True, timeout=120
        )

    read = mender("read", delta)
    assert read.returncode == 0, read.stderr
    assert DELTA_TYPE in read.stdout
    assert "rootfs-image.checksum" in read.stdout
    valid = mender("validate", "-k", keys["rsa2048"].public, delta)
    assert valid.returncode == 0, valid.stderr
    wrong = mender("validate", "-k", keys["rsa-other"].public, delta)
    assert wrong.returncode != 0
