"""The slot writer (payloads/rootfs.py): whole pages to the slot, in order, without re-buffering."""

from __future__ import annotations

import os
import random

import pytest

from pyupdate_agent.errors import SlotError
from pyupdate_agent.payloads import rootfs
from pyupdate_agent.payloads.rootfs import PAGE, SlotWriter
from pyupdate_agent.slots import Slot


def _slot(tmp_path, size: int) -> Slot:
    path = tmp_path / "slotB"
    path.write_bytes(b"\xff" * size)
    return Slot("B", str(path), 3)


def test_chunks_off_the_page_grid_land_in_order_in_whole_pages(tmp_path, monkeypatch):
    # as the reader hands them over: 512 bytes short first, then whole MiB, odd sizes
    rng = random.Random(7)
    sizes = [(1 << 20) - 512, 1 << 20, 1 << 20, 100, 3, PAGE, 70_000, 1 << 20, 4093]
    data = rng.randbytes(sum(sizes))
    writes: list[tuple[int, int]] = []  # (offset, length) of each writev
    real_writev = os.writev

    def writev(fd, buffers):
        start = os.lseek(fd, 0, os.SEEK_CUR)
        done = real_writev(fd, buffers)
        writes.append((start, done))
        return done

    monkeypatch.setattr(rootfs.os, "writev", writev)
    slot = _slot(tmp_path, len(data) + 10_000)
    writer = SlotWriter(slot, len(data))
    position = 0
    for size in sizes:
        writer.write(data[position : position + size])
        position += size
    writer.finish()
    content = (tmp_path / "slotB").read_bytes()
    assert content[: len(data)] == data
    assert content[len(data) :] == b"\xff" * 10_000  # nothing past the image
    assert writer.written == len(data)
    *body, last = writes
    assert all(start % PAGE == 0 and length % PAGE == 0 for start, length in body)
    assert last[0] % PAGE == 0 and last[0] + last[1] == len(data)


def test_a_partial_writev_is_completed(tmp_path, monkeypatch):
    real_writev = os.writev

    def short_writev(fd, buffers):  # at most 1000 bytes per call, as a slow device may do
        first = bytes(buffers[0][:1000])
        return real_writev(fd, [first])

    monkeypatch.setattr(rootfs.os, "writev", short_writev)
    data = os.urandom(3 * PAGE + 123)
    writer = SlotWriter(_slot(tmp_path, len(data)), len(data))
    writer.write(data[:5000])
    writer.write(data[5000:])
    writer.finish()
    assert (tmp_path / "slotB").read_bytes() == data


def test_a_failing_slot_write_is_one_slot_error(tmp_path, monkeypatch):
    def failing_writev(fd, buffers):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(rootfs.os, "writev", failing_writev)
    writer = SlotWriter(_slot(tmp_path, 1 << 20), 1 << 20)
    writer.write(bytes(1 << 19))
    with pytest.raises(SlotError, match=r"slot B: .*Input/output error"):
        for _ in range(8):
            writer.write(bytes(PAGE))
        writer.finish()


def test_an_image_of_unknown_size_that_outgrows_the_slot_is_one_slot_error(tmp_path):
    """A delta's image size is known only as it is written (size 0 up front): a file-backed
    slot would silently grow, so the writer stops at the slot's size."""
    slot = _slot(tmp_path, 3 * PAGE)
    writer = SlotWriter(slot, 0)
    writer.write(b"\0" * (3 * PAGE))
    with pytest.raises(SlotError, match=r"image of 12289 bytes does not fit .* \(12288 bytes\)"):
        writer.write(b"\0")
    writer.abort()
    assert os.path.getsize(slot.path) == 3 * PAGE
