"""gzip (compression/gzip.py): the parallel encoder, its framed members, reading them back."""

from __future__ import annotations

import gzip
import io
import os
import random
import struct
import subprocess
import zlib

import pytest

from pyupdate_artifact.compression import by_id
from pyupdate_artifact.compression import gzip as gz
from pyupdate_artifact.compression.gzip import BLOCK, HEADER, framed_member, stored_blocks
from pyupdate_artifact.errors import FormatError

TEXT = b"    def update(self, data: bytes) -> None:  # hash the payload\n"


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 200_000])
def test_stored_blocks_inflate_to_the_input(size: int):
    data = os.urandom(size)
    raw = stored_blocks(data, final=True)
    assert zlib.decompress(raw, -15) == data
    assert len(raw) == size + 5 * max(1, -(-size // 65535))


def test_non_final_stored_blocks_continue_a_stream():
    raw = stored_blocks(b"abc" * 30000, final=False) + stored_blocks(b"xyz", final=True)
    assert zlib.decompress(raw, -15) == b"abc" * 30000 + b"xyz"


def _parallel_gzip(data: bytes, pieces: int = 333_333, level: int | None = None) -> bytes:
    out: list[bytes] = []
    encoder = gz.open_encoder(out.append, level)
    for start in range(0, len(data), pieces):
        encoder.write(data[start : start + pieces])
    encoder.close()
    return b"".join(out)


def _mixed(mib: float) -> bytes:
    rng = random.Random(2)
    parts = []
    for i in range(int(mib * 4)):
        quarter = 1 << 18
        parts.append(
            rng.randbytes(quarter)
            if i % 3 == 0
            else bytes(quarter)
            if i % 3 == 1
            else (TEXT * 4200)[:quarter]
        )
    return b"".join(parts)


SIZES = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + BLOCK // 2]


@pytest.mark.parametrize("accel", ["1", "0"], ids=["stdlib", "accelerated"])
@pytest.mark.parametrize("size", SIZES)
def test_parallel_gzip_output_gunzips_with_the_gzip_tool(
    size: int, accel: str, monkeypatch: pytest.MonkeyPatch, tmp_path
):
    monkeypatch.setenv("PYUPDATE_NO_ACCEL", accel)
    data = _mixed(4)[:size]
    blob = _parallel_gzip(data)
    path = tmp_path / "x.gz"
    path.write_bytes(blob)
    subprocess.run(["gzip", "-t", str(path)], check=True)  # CRC32 and ISIZE trailer
    done = subprocess.run(["gzip", "-dc", str(path)], check=True, capture_output=True)
    assert done.stdout == data
    assert gzip.decompress(blob) == data


def test_random_blocks_are_stored_and_compressible_blocks_deflated():
    random_data = os.urandom(2 * BLOCK)
    blob = _parallel_gzip(random_data)
    assert len(random_data) < len(blob) < len(random_data) * 1.001
    zeros = _parallel_gzip(bytes(2 * BLOCK))
    assert len(zeros) < 20_000
    assert gzip.decompress(zeros) == bytes(2 * BLOCK)


@pytest.mark.parametrize("level", [1, 6, 9])
def test_every_level_gives_a_valid_stream(level: int):
    data = _mixed(2)
    assert gzip.decompress(_parallel_gzip(data, level=level)) == data


def test_parallel_gzip_size_is_close_to_single_stream_zlib():
    data = _mixed(4)
    ours = len(_parallel_gzip(data))
    reference = len(gzip.compress(data, 6))
    assert ours <= reference * 1.05


def test_a_failing_block_surfaces_its_error_and_abort_stops_the_pool(monkeypatch):
    def boom(*args):
        raise MemoryError("no memory for the block")

    monkeypatch.setattr(gz, "_deflate_block", boom)
    monkeypatch.setattr(gz, "_gzip_members", boom)
    encoder = gz.open_encoder(lambda b: None)
    with pytest.raises(MemoryError):
        for _ in range(10):
            encoder.write(bytes(BLOCK))
        encoder.close()
    encoder.abort()


# --- framed members (docs/artifact-format.md#framed-gzip) -------------------------------------
def _data(mib: int) -> bytes:
    parts = [os.urandom(BLOCK // 2), bytes(BLOCK // 2), (TEXT * 9000)[: BLOCK // 2]]
    return b"".join(parts[i % 3] for i in range(mib * 2))


def _read_all(blob: bytes, chunk: int = 1 << 20) -> bytes:
    reader = by_id("gzip").open_reader(io.BytesIO(blob), "data/0000.tar.gz")
    return b"".join(iter(lambda: reader.read(chunk), b""))


def _frames(blob: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each framed member, read from the size fields alone."""
    frames, pos = [], 0
    while pos < len(blob):
        total = HEADER.unpack_from(blob, pos)[-1]
        frames.append((pos, total))
        pos += total
    assert pos == len(blob)
    return frames


def _raw_member(data: bytes) -> bytes:
    obj = zlib.compressobj(6, zlib.DEFLATED, -15)
    return framed_member(obj.compress(data) + obj.flush(), zlib.crc32(data), len(data))


@pytest.fixture(params=["accelerated", "stdlib"])
def accel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PYUPDATE_NO_ACCEL", "1" if request.param == "stdlib" else "0")
    return request.param


def test_every_member_the_writer_emits_is_framed_and_the_frames_tile_the_stream(accel: str):
    data = _data(3)
    blob = _parallel_gzip(data)
    frames = _frames(blob)
    assert len(frames) >= 3  # at least one member per 1 MiB block
    for offset, length in frames:
        assert gzip.decompress(blob[offset : offset + length])  # each a whole gzip member
    assert gzip.decompress(blob) == data


def test_framed_stream_reads_back_in_order_whatever_the_read_size(accel: str):
    data = _data(4) + b"tail"
    blob = _parallel_gzip(data)
    assert _read_all(blob) == data
    assert _read_all(blob, chunk=777) == data


def test_an_empty_input_is_one_empty_framed_member(accel: str):
    blob = _parallel_gzip(b"")
    assert len(_frames(blob)) == 1
    assert gzip.decompress(blob) == b""
    assert _read_all(blob) == b""


def test_framed_and_unframed_members_mix_in_one_stream(accel: str):
    data = _data(2)
    blob = _parallel_gzip(data) + gzip.compress(b"from another writer") + _raw_member(b"again")
    assert _read_all(blob) == data + b"from another writer" + b"again"


@pytest.mark.parametrize("delta", [-9, -1, 1, 4096])
def test_a_size_field_that_lies_is_ignored(accel: str, delta: int):
    # The reader takes the members as one gzip stream: the field is for other readers.
    data = _data(2)
    blob = _parallel_gzip(data)
    offset, length = _frames(blob)[0]
    at = offset + HEADER.size - 4
    assert _read_all(blob[:at] + struct.pack("<I", length + delta) + blob[at + 4 :]) == data


def test_a_flipped_byte_or_a_lying_trailer_is_refused(accel: str):
    blob = _parallel_gzip((TEXT * 40000)[: 2 * BLOCK])
    offset, length = _frames(blob)[1]
    at = offset + length // 2
    # a flipped bit may end the deflate data early or late: corrupt or truncated, one line
    with pytest.raises(FormatError, match=r"corrupt compressed data|truncated"):
        _read_all(blob[:at] + bytes([blob[at] ^ 0xFF]) + blob[at + 1 :])
    member = _raw_member(TEXT * 100)
    lying = member[:-4] + struct.pack("<I", len(TEXT) * 100 - 1)
    with pytest.raises(FormatError, match="corrupt compressed data"):
        _read_all(lying)


def test_a_cut_stream_or_garbage_after_it_is_refused(accel: str):
    blob = _parallel_gzip(_data(2))
    with pytest.raises(FormatError, match="truncated"):
        _read_all(blob[:-100])
    with pytest.raises(FormatError, match="trailing garbage"):
        _read_all(_parallel_gzip(b"payload") + b"\x00" * 30)
