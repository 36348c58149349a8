"""Block-parallel compression (compression/blocks.py) and the zstd frames built on it (zstd.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest
import zstandard

from pyupdate_artifact.compression import by_id
from pyupdate_artifact.compression.blocks import ParallelBlocks
from pyupdate_artifact.compression.zstd import BLOCK as ZSTD_BLOCK
from pyupdate_host.writer import _inner_tar_stream


def _run(pool: ParallelBlocks, pieces: list[bytes]) -> None:
    for piece in pieces:
        pool.write(piece)
    pool.close()


def test_units_come_out_in_input_order_whatever_order_the_threads_finish():
    slow = threading.Event()

    def job(block) -> bytes:
        if bytes(block[:1]) == b"a":
            slow.wait(0.2)  # the first block finishes last
        return bytes(block[:1])

    out: list[bytes] = []
    pool = ParallelBlocks(out.append, job, threads=3, block=4, ahead=3)
    _run(pool, [b"aaaab", b"bbbccc", b"cdddd", b"e"])
    assert out == [b"a", b"b", b"c", b"d", b"e"]


def test_pieces_are_cut_on_the_block_grid_and_an_empty_input_is_one_unit():
    seen: list[bytes] = []

    def job(block) -> bytes:
        seen.append(bytes(block))
        return b""

    _run(ParallelBlocks(lambda _: None, job, threads=1, block=4, ahead=1), [b"12", b"345678", b"9"])
    assert seen == [b"1234", b"5678", b"9"]
    seen.clear()
    _run(ParallelBlocks(lambda _: None, job, threads=1, block=4, ahead=1), [])
    assert seen == [b""]


def test_a_failing_job_surfaces_its_error():
    def job(block) -> bytes:
        raise MemoryError("no memory for the block")

    pool = ParallelBlocks(lambda _: None, job, threads=2, block=4, ahead=1)
    with pytest.raises(MemoryError):
        _run(pool, [b"x" * 40])
    pool.abort()


def _zstd_stream(data: bytes, piece: int = 1 << 20) -> bytes:
    out: list[bytes] = []
    encoder = by_id("zstd").open_encoder(out.append, None)
    for start in range(0, len(data), piece):
        encoder.write(data[start : start + piece])
    encoder.close()
    return b"".join(out)


def _frames(stream: bytes) -> list[zstandard.FrameParameters]:
    frames, rest = [], stream
    while rest:
        frames.append(zstandard.get_frame_parameters(rest))
        # the decompressor reports what follows the first frame as unused input
        obj = zstandard.ZstdDecompressor().decompressobj()
        obj.decompress(rest)
        rest = obj.unused_data
    return frames


def test_zstd_is_one_frame_per_block_each_with_its_content_size():
    data = os.urandom(ZSTD_BLOCK) + bytes(ZSTD_BLOCK) + b"tail" * 1000
    stream = _zstd_stream(data)
    frames = _frames(stream)
    assert [f.content_size for f in frames] == [ZSTD_BLOCK, ZSTD_BLOCK, 4000]
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stream) != data  # one frame
    reader = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
    assert reader.read() == data


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd(1) not installed")
def test_the_zstd_tool_reads_the_frames_as_one_stream():
    data = os.urandom(1 << 20) + b"text line\n" * 700_000
    done = subprocess.run(["zstd", "-dc"], input=_zstd_stream(data), capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == data


def test_an_empty_payload_is_one_empty_frame():
    stream = _zstd_stream(b"")
    assert [f.content_size for f in _frames(stream)] == [0]


@pytest.mark.parametrize("block", [1 << 20, ZSTD_BLOCK])
def test_the_writer_reads_on_the_encoders_block_grid(tmp_path, block: int):
    # After the 512-byte tar header, reads end on the grid, so each later piece is
    # a whole block that the pool takes without joining pieces.
    first = tmp_path / "a.img"
    first.write_bytes(os.urandom(3 * block + 1000))
    second = tmp_path / "b.img"
    second.write_bytes(os.urandom(block + 7))
    pieces: list[int] = []
    _inner_tar_stream((first, second), lambda b: pieces.append(len(b)), None, block)
    position = 0
    for size in pieces:  # no piece crosses a grid line: each fills a block or ends a file
        assert position // block == (position + size - 1) // block or size == 0
        position += size
    assert pieces.count(block) == 2  # the first file: header + (block - 512), 2 blocks, the rest
