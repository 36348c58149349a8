"""Round trips of the delta codec on generated images: the result is NEW bit for bit,
and the delta is small where the change is (docs/delta-format.md)."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest
from artifact_delta_helpers import BLOCK, code_like, rng, round_trip, shift_addresses

from pyupdate_artifact.delta.bytesum import add_bytes, sub_bytes


def _image(seed: int = 1) -> bytes:
    """A small filesystem-like image: files on the 4 KiB grid, zero gaps, a partial tail."""
    r = rng(seed)
    parts = [code_like(r, 300 * BLOCK), bytes(64 * BLOCK), r.randbytes(100 * BLOCK)]
    parts += [b"text line %d\n" % i for i in range(3000)]
    return b"".join(parts) + bytes(-sum(map(len, parts)) % BLOCK) + b"tail"


def test_bytesum_matches_bytewise_arithmetic() -> None:
    r = rng(2)
    for size in (1, 3, 8, 999, 4096):
        a, b = r.randbytes(size), r.randbytes(size)
        assert sub_bytes(a, b) == bytes((x - y) % 256 for x, y in zip(a, b, strict=True))
        assert add_bytes(a, b) == bytes((x + y) % 256 for x, y in zip(a, b, strict=True))
        assert add_bytes(b, sub_bytes(a, b)) == a


def test_identical_images_make_a_tiny_delta(tmp_path: Path) -> None:
    old = _image()
    assert len(round_trip(tmp_path, old, old)) < 400


def test_appended_file(tmp_path: Path) -> None:
    old = _image()
    extra = rng(3).randbytes(20 * BLOCK)
    delta = round_trip(tmp_path, old, old + extra)
    assert len(delta) < len(extra) + 2000


def test_changed_file_in_place(tmp_path: Path) -> None:
    old = _image()
    r = rng(4)
    changed = shift_addresses(old[: 300 * BLOCK], r)
    new = changed + old[300 * BLOCK :]
    delta = round_trip(tmp_path, old, new)
    # a few percent of the changed region: the diff bytes are mostly zeros
    assert len(delta) < 300 * BLOCK // 10, len(delta)


def test_changed_file_moved_and_grown(tmp_path: Path) -> None:
    """A library rebuilt with an insertion, stored elsewhere in the image: whole
    blocks no longer match, the byte-level matcher must find the old version."""
    old = _image()
    r = rng(5)
    library = old[: 300 * BLOCK]
    rebuilt = shift_addresses(library[:100000] + r.randbytes(777) + library[100000:], r)
    new = old[300 * BLOCK :] + rebuilt
    delta = round_trip(tmp_path, old, new)
    assert len(delta) < 300 * BLOCK // 8, len(delta)


def test_shifted_contents(tmp_path: Path) -> None:
    old = _image()
    new = old[:5000] + b"inserted, not a multiple of anything" + old[5000:]
    delta = round_trip(tmp_path, old, new)
    assert len(delta) < 2000, len(delta)


def test_full_rewrite(tmp_path: Path) -> None:
    old = _image()
    new = rng(6).randbytes(len(old))
    delta = round_trip(tmp_path, old, new)
    assert len(delta) < len(new) + 4096


def test_zero_regions(tmp_path: Path) -> None:
    old = _image()
    new = old[: 100 * BLOCK] + bytes(300 * BLOCK) + old[100 * BLOCK :]
    delta = round_trip(tmp_path, old, new)
    assert len(delta) < 1000, len(delta)


@pytest.mark.parametrize(
    ("old_size", "new_size"),
    [(0, 5000), (5000, 0), (0, 0), (1, 1), (BLOCK - 1, BLOCK + 1), (700 * BLOCK, 3 * BLOCK)],
)
def test_sizes_of_old_and_new(tmp_path: Path, old_size: int, new_size: int) -> None:
    image = _image(7) * 2
    round_trip(tmp_path, image[:old_size], image[BLOCK // 2 : BLOCK // 2 + new_size])


def test_large_literal_runs_span_segments(tmp_path: Path, monkeypatch) -> None:
    from pyupdate_host.delta import segments

    monkeypatch.setattr(segments, "SEGMENT_RAW", 50000)
    old = _image()
    new = (
        old[: 50 * BLOCK]
        + lzma.compress(old)[: 40 * BLOCK]
        + shift_addresses(old[: BLOCK * 99], rng(8))
    )
    delta = round_trip(tmp_path, old, new)
    assert delta.count(b"\xfd7zXZ") > 6  # several segments of several streams
