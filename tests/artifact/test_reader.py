"""Streaming reader (reader.py): non-seekable sources, the sink protocol, signature policy."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from artifact_helpers import HELLO, HELLO_SHA, Parts, Trickle

from pyupdate_artifact.errors import ChecksumError, FormatError, SignatureError
from pyupdate_artifact.reader import ArtifactReader, read_artifact
from pyupdate_artifact.verify import load_verifier
from pyupdate_host.sign import load_signer


class RecordingSink:
    """A real sink: collects bytes per file and records the calls in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.data: dict[str, bytearray] = {}

    def open_file(self, payload, name: str, size: int):
        self.calls.append(("open", payload.index, name, size))
        buffer = self.data.setdefault(name, bytearray())
        sink = self

        class Writer:
            def write(self, chunk: bytes) -> None:
                buffer.extend(chunk)

            def finish(self) -> None:
                sink.calls.append(("finish", name))

            def abort(self) -> None:
                sink.calls.append(("abort", name))

        return Writer()


def _big_files() -> dict[str, bytes]:
    return {"a.bin": bytes(range(256)) * 9000, "b.txt": b"", "c.img": b"xyz" * 700_000}


@pytest.mark.parametrize("suffix", ["", ".gz", ".xz", ".zst"])
def test_reads_a_non_seekable_trickling_stream(suffix: str):
    files = _big_files()
    data = Parts(files=files, suffix=suffix, type_info={"type": "x"}).build()
    sink = RecordingSink()
    header = read_artifact(Trickle(data, step=1000), sink=sink)
    assert {k: bytes(v) for k, v in sink.data.items()} == files
    assert sink.calls == [
        ("open", 0, "a.bin", len(files["a.bin"])),
        ("finish", "a.bin"),
        ("open", 0, "b.txt", 0),
        ("finish", "b.txt"),
        ("open", 0, "c.img", len(files["c.img"])),
        ("finish", "c.img"),
    ]
    assert [(f.name, f.size) for f in header.payloads[0].files] == [
        (n, len(b)) for n, b in files.items()
    ]


def test_read_header_consumes_no_payload_byte():
    parts = Parts(files={"rootfs.ext4": b"x" * 100_000})
    data = parts.build()
    stream = Trickle(data, step=512)
    reader = ArtifactReader(stream)
    header = reader.read_header()
    payload_start = data.index(b"data/0000.tar.gz")
    assert stream.consumed <= payload_start + 512
    assert header.payloads[0].files[0].size == -1  # unknown until the data is read
    reader.read_payloads(None)
    assert header.payloads[0].files[0].size == 100_000


def test_header_fields_of_a_rootfs_artifact(tmp_path: Path, rootfs: Path, cli):
    out = tmp_path / "a.mender"
    assert (
        cli(
            "write", "rootfs-image", "-n", "release-1", "-t", "qemux86-64", "-f", rootfs, "-o", out
        ).rc
        == 0
    )
    header = read_artifact(out)
    assert header.format_version == 3
    assert header.artifact_name == "release-1"
    assert header.artifact_group is None
    assert header.device_types == ("qemux86-64",)
    assert header.depends == {}
    assert header.type_provides == {
        "rootfs-image.checksum": HELLO_SHA,
        "rootfs-image.version": "release-1",
    }
    assert header.clears_provides == ["artifact_group", "rootfs_image_checksum", "rootfs-image.*"]
    assert header.manifest["data/0000/rootfs.ext4"] == HELLO_SHA
    assert header.signed is False and header.signature_verified is False
    assert header.payloads[0].meta_data is None


def test_clears_provides_is_none_when_no_type_info_has_the_key():
    header = read_artifact(io.BytesIO(Parts().build()))
    assert header.clears_provides is None


def test_sink_abort_is_called_on_a_checksum_mismatch():
    parts = Parts(files={"rootfs.ext4": HELLO})
    parts.data_members = [("rootfs.ext4", b"HELLO rootfs\n")]
    sink = RecordingSink()
    with pytest.raises(ChecksumError, match=r"rootfs.ext4 does not match its manifest checksum"):
        read_artifact(io.BytesIO(parts.build()), sink=sink)
    assert sink.calls == [("open", 0, "rootfs.ext4", 13), ("abort", "rootfs.ext4")]


def test_sink_abort_is_called_when_the_stream_breaks_mid_file():
    data = Parts(files={"rootfs.ext4": bytes(3 << 20)}, suffix="").build()
    sink = RecordingSink()
    with pytest.raises(FormatError, match=r"unexpected end of data"):
        read_artifact(io.BytesIO(data[: len(data) - 1024 - 1_000_000]), sink=sink)
    assert sink.calls[-1] == ("abort", "rootfs.ext4")
    assert ("finish", "rootfs.ext4") not in sink.calls


def test_a_sink_error_propagates_and_aborts_the_file():
    class Full(RecordingSink):
        def open_file(self, payload, name, size):
            writer = super().open_file(payload, name, size)

            def write(chunk):
                raise OSError(28, "No space left on device")

            writer.write = write
            return writer

    sink = Full()
    with pytest.raises(OSError, match=r"No space"):
        read_artifact(io.BytesIO(Parts().build()), sink=sink)
    assert sink.calls[-1] == ("abort", "rootfs.ext4")


# --- signature policy ---------------------------------------------------------------
@pytest.fixture
def signed(tmp_path: Path, rootfs: Path, cli, keys) -> Path:
    out = tmp_path / "s.mender"
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
        out,
        "-k",
        keys["ec"].private,
    )
    assert result.rc == 0, result
    return out


def test_signed_artifact_without_keys_is_read_but_not_verified(signed: Path):
    header = read_artifact(signed)
    assert header.signed and not header.signature_verified


def test_signature_is_checked_before_the_payload(signed: Path, keys):
    stream = Trickle(signed.read_bytes(), step=512)
    reader = ArtifactReader(stream, verify_keys=[load_verifier(keys["ec-other"].public)])
    with pytest.raises(SignatureError, match=r"does not verify with"):
        reader.read_header()
    assert stream.consumed < signed.read_bytes().rindex(b"data/0000.tar.gz")


def test_any_of_several_keys_may_verify(signed: Path, keys):
    verifiers = [load_verifier(keys[k].public) for k in ("rsa2048", "ec-other", "ec")]
    assert read_artifact(signed, verify_keys=verifiers).signature_verified
    with pytest.raises(SignatureError, match=r"does not verify with any of"):
        read_artifact(signed, verify_keys=verifiers[:2])


def test_require_signature_without_keys_refuses_even_a_signed_artifact(signed: Path):
    with pytest.raises(SignatureError, match=r"no verification key given"):
        read_artifact(signed, require_signature=True)


def test_unsigned_artifact_is_refused_when_a_key_or_signature_is_required(keys):
    data = Parts().build()
    with pytest.raises(SignatureError, match=r"not signed"):
        read_artifact(io.BytesIO(data), verify_keys=[load_verifier(keys["ec"].public)])
    with pytest.raises(SignatureError, match=r"not signed"):
        read_artifact(io.BytesIO(data), require_signature=True)


def test_signature_over_other_manifest_bytes_is_refused(keys):
    parts = Parts()
    members = parts.members()
    signature = load_signer(keys["rsa2048"].private).sign(members[1][1] + b"\n")
    members.insert(2, ("manifest.sig", signature))
    from artifact_helpers import tar_bytes

    with pytest.raises(SignatureError, match=r"does not verify"):
        read_artifact(
            io.BytesIO(tar_bytes(members)), verify_keys=[load_verifier(keys["rsa2048"].public)]
        )


def test_payload_sha_is_checked_against_the_signed_manifest():
    files = {"rootfs.ext4": b"x" * 5000}
    header = read_artifact(io.BytesIO(Parts(files=files).build()))
    assert header.payloads[0].files[0].sha256 == hashlib.sha256(files["rootfs.ext4"]).hexdigest()
