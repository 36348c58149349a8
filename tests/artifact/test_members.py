"""Framed gzip members (members.py): cut without inflating, inflated whole, in order."""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib

import pytest

from pyupdate_artifact import compress, members
from pyupdate_artifact.deflate import BLOCK, ParallelGzip
from pyupdate_artifact.errors import FormatError
from pyupdate_artifact.members import HEADER, MAX_OUTPUT, framed_member

TEXT = b"    def update(self, data: bytes) -> None:  # hash the payload\n"


def _data(mib: int) -> bytes:
    parts = [os.urandom(BLOCK // 2), bytes(BLOCK // 2), (TEXT * 9000)[: BLOCK // 2]]
    return b"".join(parts[i % 3] for i in range(mib * 2))


def _gzip(data: bytes) -> bytes:
    out: list[bytes] = []
    gz = ParallelGzip(out.append)
    gz.write(data)
    gz.close()
    return b"".join(out)


def _read_all(blob: bytes, chunk: int = 1 << 20) -> bytes:
    reader = compress.by_id("gzip").open_reader(io.BytesIO(blob), "data/0000.tar.gz")
    parts = []
    while part := reader.read(chunk):
        parts.append(part)
    return b"".join(parts)


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
    blob = _gzip(data)
    frames = _frames(blob)
    assert len(frames) >= 3  # at least one member per 1 MiB block
    for offset, length in frames:
        member = blob[offset : offset + length]
        assert gzip.decompress(member)  # each frame is a whole gzip member on its own
    assert gzip.decompress(blob) == data


def test_framed_stream_reads_back_in_order_whatever_the_read_size(accel: str):
    data = _data(4) + b"tail"
    blob = _gzip(data)
    assert _read_all(blob) == data
    assert _read_all(blob, chunk=777) == data


def test_an_empty_input_is_one_empty_framed_member(accel: str):
    blob = _gzip(b"")
    assert len(_frames(blob)) == 1
    assert gzip.decompress(blob) == b""
    assert _read_all(blob) == b""


def test_an_unframed_member_after_framed_ones_is_read_as_a_stream(accel: str):
    data = _data(2)
    blob = _gzip(data) + gzip.compress(b"from another writer") + _raw_member(b"framed again")
    assert _read_all(blob) == data + b"from another writer" + b"framed again"


def test_a_stream_without_frames_reads_as_before():
    data = _data(2)
    assert _read_all(gzip.compress(data, 1)) == data


def test_a_member_above_the_output_bound_is_still_read_serially():
    big = bytes(MAX_OUTPUT + BLOCK)
    blob = _raw_member(b"first") + _raw_member(big)
    assert _read_all(blob) == b"first" + big


def _corrupt(blob: bytes, offset: int, value: bytes) -> bytes:
    return blob[:offset] + value + blob[offset + len(value) :]


def test_a_flipped_byte_inside_a_member_is_refused(accel: str):
    blob = _gzip((TEXT * 40000)[: 2 * BLOCK])
    offset, length = _frames(blob)[1]
    bad = _corrupt(blob, offset + length // 2, bytes([blob[offset + length // 2] ^ 0xFF]))
    with pytest.raises(FormatError, match="corrupt compressed data"):
        _read_all(bad)


@pytest.mark.parametrize("delta", [-9, -1, 1, 4096])
def test_a_size_field_that_lies_never_yields_other_data(accel: str, delta: int):
    # The field is advisory: the gzip stream around it is still valid, so a lie either
    # fails a check or sends the reader to the serial path, which reads the true data.
    data = _data(2)
    blob = _gzip(data)
    offset, length = _frames(blob)[0]
    bad = _corrupt(blob, offset + HEADER.size - 4, struct.pack("<I", length + delta))
    try:
        assert _read_all(bad) == data
    except FormatError as err:
        assert "corrupt compressed data" in str(err) or "truncated" in str(err)


def test_a_trailer_length_that_lies_is_refused(accel: str):
    blob = _raw_member(TEXT * 100)
    bad = _corrupt(blob, len(blob) - 4, struct.pack("<I", len(TEXT) * 100 - 1))
    with pytest.raises(FormatError, match="corrupt compressed data"):
        _read_all(bad)


def test_a_cut_stream_is_refused(accel: str):
    blob = _gzip(_data(2))
    with pytest.raises(FormatError, match="truncated"):
        _read_all(blob[:-100])


def test_garbage_after_the_members_is_refused(accel: str):
    blob = _gzip(b"payload")
    with pytest.raises(FormatError):
        _read_all(blob + b"\x00" * 30)


def test_framed_members_are_one_gzip_stream_to_the_gzip_tool(tmp_path):
    data = _data(2)
    path = tmp_path / "x.gz"
    path.write_bytes(_gzip(data))
    with gzip.open(path) as f:
        assert f.read() == data
    assert members.MAX_MEMBER > BLOCK + BLOCK // 100  # a stored 1 MiB block always fits
