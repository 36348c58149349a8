"""The zstd frame walker: a stream cut anywhere is refused, whole frames of every shape pass."""

from __future__ import annotations

import io
import os

import pytest
import zstandard

from pyupdate_artifact.compression import by_id
from pyupdate_artifact.compression.zstdframes import FrameWalker
from pyupdate_artifact.errors import FormatError

DATA = os.urandom(70_000) + bytes(400_000) + b"line of text\n" * 20_000


def _read_all(blob: bytes, size: int = 65536) -> bytes:
    reader = by_id("zstd").open_reader(io.BytesIO(blob), "data/0000.tar")
    return b"".join(iter(lambda: reader.read(size), b""))


def _walk(blob: bytes, piece: int = 7) -> FrameWalker:
    walker = FrameWalker(io.BytesIO(blob), "x")
    while walker.read(piece):
        pass
    return walker


def _skippable(content: bytes) -> bytes:
    return (0x184D2A53).to_bytes(4, "little") + len(content).to_bytes(4, "little") + content


FRAMES = {
    "plain": zstandard.ZstdCompressor(level=3).compress(DATA),
    "checksum and size": zstandard.ZstdCompressor(write_checksum=True).compress(DATA),
    "no size": zstandard.ZstdCompressor(write_content_size=False).compress(DATA),
    "threads": zstandard.ZstdCompressor(threads=2).compress(DATA * 4),
    "empty frame": zstandard.ZstdCompressor().compress(b""),
    "dictionary id": zstandard.ZstdCompressor(
        dict_data=zstandard.train_dictionary(
            2048, [f"sample {i}, repeated {i % 7} times ".encode() * 5 for i in range(400)]
        )
    ).compress(b"sample 3"),
}


@pytest.mark.parametrize("name", FRAMES)
def test_whole_frames_end_cleanly_and_every_cut_is_seen(name: str):
    blob = FRAMES[name]
    _walk(blob).check_end()
    cuts = range(1, len(blob)) if len(blob) < 64 else (1, 4, 5, 9, len(blob) // 2, len(blob) - 1)
    for cut in cuts:
        with pytest.raises(FormatError, match=r"^x: compressed stream is truncated$"):
            _walk(blob[:cut]).check_end()


def test_concatenated_and_skippable_frames_are_one_stream():
    one, two = (zstandard.ZstdCompressor().compress(d) for d in (b"ab", b"cd"))
    blob = one + _skippable(b"metadata") + _skippable(b"") + two
    assert _read_all(blob) == b"abcd"
    with pytest.raises(FormatError, match="truncated"):
        _read_all(blob[:-1])
    with pytest.raises(FormatError, match="truncated"):
        _read_all(one + _skippable(b"metadata")[:-2])


def test_reader_refuses_a_cut_stream_at_any_offset_of_a_real_payload():
    blob = FRAMES["plain"]
    assert _read_all(blob) == DATA
    for cut in range(1, len(blob), max(1, len(blob) // 97)):
        with pytest.raises(FormatError, match=r"^data/0000.tar: "):
            _read_all(blob[:cut])


def test_empty_input_is_empty_not_truncated():
    with pytest.raises(FormatError, match=r"^x: compressed stream is empty$"):
        _walk(b"").check_end()


def test_garbage_is_left_to_the_decompressor():
    walker = _walk(b"not zstd at all")
    walker.check_end()  # the walker lost track; the decompressor reports the garbage
    with pytest.raises(FormatError, match="corrupt compressed data"):
        _read_all(b"not zstd at all")


@pytest.mark.parametrize("tail", [b"garbage!", bytes(8), b"x"])
def test_bytes_after_the_last_frame_are_refused(tail: bytes):
    with pytest.raises(FormatError, match=r"^data/0000.tar: corrupt compressed data"):
        _read_all(FRAMES["plain"] + tail)
