"""A delta that is corrupt, truncated, lies about sizes, or meets the wrong base:
one DeltaError line, and for a wrong base not a single byte handed to out()."""

from __future__ import annotations

import errno
import hashlib
import io
import lzma
import threading
import tracemalloc
from pathlib import Path

import pytest
from artifact_delta_helpers import BLOCK, apply, code_like, encode, rng, sha, shift_addresses

from pyupdate_artifact.delta import DeltaApplier, DeltaBaseMismatch, DeltaError
from pyupdate_artifact.delta import format as fmt


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes, bytes]:
    """(folder with old.img, old, new, delta) with COPY, ZERO, DIFF and ADD ops."""
    folder = tmp_path_factory.mktemp("delta")
    r = rng(11)
    old = code_like(r, 40 * BLOCK) + bytes(8 * BLOCK) + r.randbytes(5 * BLOCK)
    new = old[: 10 * BLOCK] + shift_addresses(old[10 * BLOCK : 20 * BLOCK], r)
    new += old[20 * BLOCK :] + r.randbytes(3000)
    return folder, old, new, encode(folder, old, new)


def _never_called(data: bytes | memoryview) -> None:
    raise AssertionError("out() was called")


def _feed(base: Path | io.RawIOBase, delta: bytes, old: bytes, new: bytes, out=None) -> None:
    slot = open(base, "rb") if isinstance(base, Path) else base  # noqa: SIM115
    with slot:
        applier = DeltaApplier(
            slot,
            out or (lambda data: None),
            expect_base=sha(old),
            expect_result=sha(new),
        )
        for at in range(0, len(delta), 1000):
            applier.write(delta[at : at + 1000])
        applier.finish()


def _raw_delta(
    old: bytes,
    new_size: int,
    segments: list[tuple[int, bytes, bytes, bytes]],
    *,
    new_sha: bytes = bytes(32),
    end: bool = True,
    dict_size: int = 1 << 16,
) -> bytes:
    """A delta built field by field: segments are (out_len, ctrl, diff, lit)."""
    out = fmt.HEADER.pack(
        fmt.MAGIC, fmt.VERSION, 0, 0, len(old), new_size, hashlib.sha256(old).digest(), new_sha
    )
    small = [{"id": lzma.FILTER_LZMA2, "dict_size": dict_size}]
    for out_len, *streams in segments:
        packed = [
            lzma.compress(s, format=lzma.FORMAT_XZ, filters=small) if s else b"" for s in streams
        ]
        sizes = [n for raw, xz in zip(streams, packed, strict=True) for n in (len(raw), len(xz))]
        out += fmt.SEGMENT.pack(out_len, *sizes) + b"".join(packed)
    return out + (bytes(fmt.SEGMENT.size) if end else b"")


def _op(op: int, length: int, offset: int | None = None) -> bytes:
    out = bytearray([op])
    fmt.put_varint(out, length)
    if offset is not None:
        fmt.put_varint(out, fmt.zigzag(offset))
    return bytes(out)


def _lying(
    old: bytes, new_size: int, *segments: tuple[int, bytes, bytes, bytes], dict_size: int = 1 << 16
) -> str:
    delta = _raw_delta(old, new_size, list(segments), dict_size=dict_size)
    with pytest.raises(DeltaError) as caught:
        applier = DeltaApplier(
            io.BytesIO(old), lambda data: None, expect_base=sha(old), expect_result="00" * 32
        )
        applier.write(delta)
        applier.finish()
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- the base ---------------------------------------------------------------
def test_wrong_base_is_refused_before_out_is_called(pair, tmp_path: Path) -> None:
    _, old, new, delta = pair
    modified = bytearray(old)
    modified[12345] ^= 1
    (tmp_path / "slot").write_bytes(bytes(modified))
    with pytest.raises(DeltaBaseMismatch, match="install the full artifact"):
        _feed(tmp_path / "slot", delta, old, new, out=_never_called)


def test_base_smaller_than_old_is_refused(pair, tmp_path: Path) -> None:
    _, old, new, delta = pair
    (tmp_path / "slot").write_bytes(old[:-1])
    with pytest.raises(DeltaBaseMismatch, match="smaller"):
        _feed(tmp_path / "slot", delta, old, new, out=_never_called)


def test_base_larger_than_old_is_fine(pair, tmp_path: Path) -> None:
    """A slot partition is larger than the image written to it."""
    _, old, new, delta = pair
    (tmp_path / "slot").write_bytes(old + b"\xff" * 3 * BLOCK)
    result = bytearray()
    _feed(tmp_path / "slot", delta, old, new, out=result.extend)
    assert result == new


def test_delta_for_another_base_than_signed_is_refused(pair) -> None:
    folder, old, new, delta = pair
    with pytest.raises(DeltaError, match="depends") as caught:
        apply(folder / "old.img", delta, expect_base=sha(b"other"), expect_result=sha(new))
    assert not isinstance(caught.value, DeltaBaseMismatch)
    with pytest.raises(DeltaError, match="provides"):
        apply(folder / "old.img", delta, expect_base=sha(old), expect_result=sha(b"other"))


class _FailingSlot(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._at = offset
        return offset

    def readinto(self, buffer) -> int:
        raise OSError(errno.EIO, "Input/output error")


def test_base_read_error_is_one_line(pair) -> None:
    _, old, new, delta = pair
    with pytest.raises(DeltaError, match="base slot read failed at offset 0: Input/output error"):
        _feed(_FailingSlot(), delta, old, new, out=_never_called)


# --- corrupt and truncated -------------------------------------------------------
def test_every_truncation_is_a_delta_error(pair) -> None:
    folder, old, new, delta = pair
    for cut in [*range(0, 200, 7), *range(200, len(delta), max(1, len(delta) // 97))]:
        with pytest.raises(DeltaError):
            _feed(folder / "old.img", delta[:cut], old, new)


def test_data_after_the_end_is_refused(pair) -> None:
    folder, old, new, delta = pair
    with pytest.raises(DeltaError, match="after the end"):
        _feed(folder / "old.img", delta + b"\0", old, new)


def test_every_corrupted_byte_is_a_delta_error(pair) -> None:
    folder, old, new, delta = pair
    r = rng(12)
    positions = list(range(0, fmt.HEADER.size + fmt.SEGMENT.size + 64))
    positions += r.sample(range(len(delta)), min(150, len(delta)))
    for at in positions:
        bad = bytearray(delta)
        bad[at] ^= 1 << r.randrange(8)
        with pytest.raises(DeltaError):
            _feed(folder / "old.img", bytes(bad), old, new)


# --- lying sizes and offsets -------------------------------------------------------
def test_copy_beyond_old_size() -> None:
    old = bytes(range(256)) * 16
    message = _lying(old, 100, (100, _op(fmt.OP_COPY, 100, len(old) - 50), b"", b""))
    assert "past the base image size" in message


def test_copy_before_old_start() -> None:
    old = bytes(range(256)) * 16
    assert "before the base image" in _lying(old, 10, (10, _op(fmt.OP_COPY, 10, -5), b"", b""))


def test_output_beyond_new_size() -> None:
    old = bytes(4096)
    assert "past the new image size" in _lying(old, 10, (11, _op(fmt.OP_ZERO, 11), b"", b""))
    assert "runs past the segment" in _lying(old, 10, (10, _op(fmt.OP_ZERO, 11), b"", b""))


def test_ops_shorter_than_segment() -> None:
    old = bytes(4096)
    assert "fewer bytes" in _lying(old, 10, (10, _op(fmt.OP_ZERO, 9), b"", b""))


def test_huge_lengths() -> None:
    old = bytes(4096)
    huge = _op(fmt.OP_ADD, 1 << 62)
    assert "runs past" in _lying(old, 10, (10, huge, b"", b"x" * 10))
    assert "oversized number" in _lying(old, 10, (10, bytes([2]) + b"\xff" * 12, b"", b""))
    header = fmt.HEADER.pack(
        fmt.MAGIC, 1, 0, 0, 4096, 1 << 50, hashlib.sha256(old).digest(), bytes(32)
    )
    with pytest.raises(DeltaError, match="exceed"):
        DeltaApplier(
            io.BytesIO(old), _never_called, expect_base=sha(old), expect_result="00" * 32
        ).write(header)


def test_segment_lengths_beyond_limits_are_refused_before_allocating() -> None:
    old = bytes(4096)
    head = _raw_delta(old, 1 << 30, [], end=False)
    for fields, pattern in (
        ((10, 1 << 31, 10, 0, 0, 0, 0), "streams exceed"),
        ((10, 10, 1 << 31, 0, 0, 0, 0), "compressed streams exceed"),
        ((10, 0, 0, 11, 100, 0, 0), "more diff or literal"),
    ):
        applier = DeltaApplier(
            io.BytesIO(old), _never_called, expect_base=sha(old), expect_result="00" * 32
        )
        with pytest.raises(DeltaError, match=pattern):
            applier.write(head + fmt.SEGMENT.pack(*fields))


def test_stream_needing_a_larger_dictionary_than_allowed_is_refused() -> None:
    old = bytes(4096)
    ctrl = _op(fmt.OP_ZERO, 5)
    assert "Memory usage limit" in _lying(old, 5, (5, ctrl, b"", b""), dict_size=64 << 20)


def test_literal_stream_shorter_than_ops_need() -> None:
    old = bytes(4096)
    message = _lying(old, 10, (10, _op(fmt.OP_ADD, 10), b"", b"x" * 5))
    assert "more bytes than the stream holds" in message


def test_unused_literals_are_refused() -> None:
    old = bytes(4096)
    ctrl = _op(fmt.OP_ADD, 5) + _op(fmt.OP_ZERO, 5)
    assert "left unused" in _lying(old, 10, (10, ctrl, b"", b"x" * 9))


def test_unknown_op_and_zero_length_op() -> None:
    old = bytes(4096)
    assert "unknown op" in _lying(old, 5, (5, bytes([9, 5]), b"", b""))
    assert "length 0" in _lying(old, 5, (5, _op(fmt.OP_ZERO, 0), b"", b""))


# --- memory ----------------------------------------------------------------------
def test_applier_holds_no_whole_image_buffer(tmp_path: Path) -> None:
    r = rng(13)
    old = code_like(r, 1 << 20) + r.randbytes(10 << 20) + bytes(4 << 20)
    new = shift_addresses(old[: 1 << 20], r) + old[1 << 20 :] + r.randbytes(1 << 19)
    delta = encode(tmp_path, old, new)
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        _feed(tmp_path / "old.img", delta, old, new, out=digest.update)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == sha(new)
    # 15 MiB in and out; held: one segment, the xz dictionaries (1 MiB each here), 256 KiB pieces
    assert peak < 5 << 20, peak


def test_failed_or_aborted_apply_leaves_no_thread(pair) -> None:
    folder, old, new, delta = pair
    before = threading.active_count()
    bad = bytearray(delta)
    bad[-40] ^= 0xFF
    with pytest.raises(DeltaError):
        _feed(folder / "old.img", bytes(bad), old, new)
    with open(folder / "old.img", "rb") as slot:
        applier = DeltaApplier(
            slot, lambda data: None, expect_base=sha(old), expect_result=sha(new)
        )
        applier.write(delta[: len(delta) // 2])
        applier.abort()
    assert threading.active_count() == before
