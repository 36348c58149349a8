"""Parallel gzip and stored blocks (deflate.py)."""

from __future__ import annotations

import gzip
import os
import random
import subprocess
import zlib

import pytest

from pyupdate_artifact import deflate
from pyupdate_artifact.deflate import BLOCK, ParallelGzip, stored_blocks


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 200_000])
def test_stored_blocks_inflate_to_the_input(size: int):
    data = os.urandom(size)
    raw = stored_blocks(data, final=True)
    assert zlib.decompress(raw, -15) == data
    assert len(raw) == size + 5 * max(1, -(-size // 65535))


def test_non_final_stored_blocks_continue_a_stream():
    raw = stored_blocks(b"abc" * 30000, final=False) + stored_blocks(b"xyz", final=True)
    assert zlib.decompress(raw, -15) == b"abc" * 30000 + b"xyz"


def _parallel_gzip(data: bytes, pieces: int = 333_333, **kwargs) -> bytes:
    out: list[bytes] = []
    gz = ParallelGzip(out.append, **kwargs)
    for start in range(0, len(data), pieces):
        gz.write(data[start : start + pieces])
    gz.close()
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
            else (b"    def update(self, data: bytes) -> None:  # hash the payload\n" * 4200)[
                :quarter
            ]
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
    assert gzip.decompress(_parallel_gzip(data, level=level, threads=1)) == data


def test_parallel_gzip_size_is_close_to_single_stream_zlib():
    data = _mixed(4)
    ours = len(_parallel_gzip(data))
    reference = len(gzip.compress(data, 6))
    assert ours <= reference * 1.05


def test_a_failing_block_surfaces_its_error_and_abort_stops_the_pool(monkeypatch):
    def boom(*args):
        raise MemoryError("no memory for the block")

    monkeypatch.setattr(deflate, "_deflate_block", boom)
    monkeypatch.setattr(deflate, "_gzip_members", boom)
    gz = ParallelGzip(lambda b: None)
    with pytest.raises(MemoryError):
        for _ in range(10):
            gz.write(bytes(BLOCK))
        gz.close()
    gz.abort()
