"""Compressor registry and bounded decompressing readers (compress.py)."""

from __future__ import annotations

import gzip
import io
import lzma
import zlib

import pytest
import zstandard

from pyupdate_artifact import compress
from pyupdate_artifact.compress import COMPRESSIONS, by_id, by_member, compress_small
from pyupdate_artifact.errors import FormatError, UsageError

PAYLOAD = b"".join(bytes([i % 251]) * 1000 + b"text line\n" * 50 for i in range(300))


def _compressed(kind: str, data: bytes) -> bytes:
    return {
        "none": lambda d: d,
        "gzip": lambda d: gzip.compress(d, mtime=0),
        "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_XZ),
        "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
    }[kind](data)


def _read_all(kind: str, blob: bytes, size: int = 65536) -> bytes:
    reader = by_id(kind).open_reader(io.BytesIO(blob), "data/0000.tar")
    parts = []
    while chunk := reader.read(size):
        assert len(chunk) <= size
        parts.append(chunk)
    return b"".join(parts)


def test_registry_maps_ids_and_suffixes_like_mender_artifact():
    assert {c.id: c.suffix for c in COMPRESSIONS.values()} == {
        "none": "",
        "gzip": ".gz",
        "lzma": ".xz",
        "zstd": ".zst",
    }
    assert by_member("header.tar.gz", "header.tar").id == "gzip"
    assert by_member("data/0000.tar", "data/0000.tar").id == "none"
    assert by_member("data/0001.tar.zst", "data/0001.tar").id == "zstd"


def test_unknown_compression_is_a_usage_error_naming_the_choices():
    with pytest.raises(
        UsageError, match=r"unknown compression 'bz2' \(use none\|gzip\|lzma\|zstd\)"
    ):
        by_id("bz2")


def test_unknown_suffix_is_a_format_error():
    with pytest.raises(FormatError, match=r"header.tar.bz2: unknown compression suffix '.bz2'"):
        by_member("header.tar.bz2", "header.tar")


@pytest.mark.parametrize("kind", list(COMPRESSIONS))
def test_readers_round_trip_every_compression(kind: str):
    assert _read_all(kind, _compressed(kind, PAYLOAD)) == PAYLOAD
    assert _read_all(kind, _compressed(kind, PAYLOAD), size=1)[:10] == PAYLOAD[:10]


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_small_header_compression_round_trips(kind: str):
    blob = compress_small(by_id(kind), PAYLOAD)
    assert _read_all(kind, blob) == PAYLOAD


def test_gzip_header_blob_is_reproducible_with_mtime_zero():
    blob = compress_small(by_id("gzip"), b"abc")
    assert blob == compress_small(by_id("gzip"), b"abc")
    assert blob[4:8] == b"\0\0\0\0"


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_reads_are_bounded_on_highly_compressed_data(kind: str):
    # 64 MiB of zeros compress to a few hundred KiB; no read may return more than asked.
    zeros = bytes(1 << 20)
    if kind == "gzip":
        obj = zlib.compressobj(9, zlib.DEFLATED, 31)
        blob = b"".join(obj.compress(zeros) for _ in range(64)) + obj.flush()
    elif kind == "lzma":
        obj = lzma.LZMACompressor(lzma.FORMAT_XZ)
        blob = b"".join(obj.compress(zeros) for _ in range(64)) + obj.flush()
    else:
        obj = zstandard.ZstdCompressor().compressobj()
        blob = b"".join(obj.compress(zeros) for _ in range(64)) + obj.flush()
    reader = by_id(kind).open_reader(io.BytesIO(blob), "d")
    total = 0
    while chunk := reader.read(1 << 20):
        assert len(chunk) <= 1 << 20
        total += len(chunk)
    assert total == 64 << 20


def test_concatenated_gzip_members_and_xz_streams_are_one_stream():
    assert _read_all("gzip", gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"
    xz = lzma.compress(b"ab") + lzma.compress(b"cd")
    assert _read_all("lzma", xz) == b"abcd"


@pytest.mark.parametrize("kind", ["gzip", "lzma"])
def test_trailing_garbage_after_the_stream_is_refused(kind: str):
    with pytest.raises(FormatError, match=r"trailing garbage"):
        _read_all(kind, _compressed(kind, PAYLOAD) + b"garbage!")


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_truncated_stream_is_refused(kind: str):
    blob = _compressed(kind, PAYLOAD)
    for cut in (1, len(blob) // 2, len(blob) - 1):
        with pytest.raises(FormatError, match=r"^data/0000.tar: "):
            _read_all(kind, blob[:cut])


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_corrupt_stream_is_refused(kind: str):
    blob = bytearray(_compressed(kind, PAYLOAD))
    blob[len(blob) // 2] ^= 0xFF
    blob[len(blob) // 2 + 1] ^= 0xFF
    with pytest.raises(FormatError, match=r"^data/0000.tar: "):
        _read_all(kind, bytes(blob))


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_empty_stream_is_refused(kind: str):
    with pytest.raises(FormatError, match=r"compressed stream is empty"):
        _read_all(kind, b"")


def test_gzip_crc_mismatch_is_refused():
    blob = bytearray(gzip.compress(PAYLOAD))
    blob[-8] ^= 1
    with pytest.raises(FormatError, match=r"corrupt compressed data"):
        _read_all("gzip", bytes(blob))


def test_stdlib_is_used_when_acceleration_is_off(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYUPDATE_NO_ACCEL", "1")
    assert compress.deflate_module() is zlib
    assert _read_all("gzip", gzip.compress(PAYLOAD)) == PAYLOAD
    monkeypatch.delenv("PYUPDATE_NO_ACCEL")
    assert compress.deflate_module().__name__ in ("isal.isal_zlib", "zlib_ng.zlib_ng", "zlib")
