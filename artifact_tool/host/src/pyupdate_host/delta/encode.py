"""encode_images: OLD and NEW image files in, the raw delta file out.

Three passes, none holding an image in memory: OLD's blocks are indexed,
NEW's blocks are mapped onto them, then NEW is walked in order: copied and
zero blocks become ops, and runs of new blocks go to the byte-level matcher
against the OLD blocks no copy used.
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pyupdate_artifact.errors import InputError

from .blocks import BLOCK, NEW_DATA, ZERO, Image, index_old, map_new
from .residue import ResidueIndex, ResidueMatcher
from .segments import SegmentWriter

_RUN = 8 << 20  # NEW bytes handed to the matcher at once


@dataclass(frozen=True, slots=True)
class EncodeStats:
    old_size: int
    new_size: int
    delta_size: int
    copy_bytes: int
    zero_bytes: int
    diff_bytes: int
    add_bytes: int
    ops: int
    segments: int
    seconds: float


def _runs(mapping: array) -> Iterator[tuple[int, int, int]]:
    """(first block, block count, kind) for runs of ZERO, NEW_DATA or consecutive OLD blocks."""
    i, n = 0, len(mapping)
    while i < n:
        kind = mapping[i]
        j = i + 1
        if kind >= 0:
            while j < n and mapping[j] == kind + (j - i):
                j += 1
        else:
            while j < n and mapping[j] == kind:
                j += 1
        yield i, j - i, kind
        i = j


def _unreferenced(old: Image, mapping: array, zero: bytearray) -> Iterator[tuple[int, int]]:
    """(offset, length) runs of OLD that no COPY uses and that are not all zeros."""
    used = bytearray(old.full_blocks)
    for kind in mapping:
        if kind >= 0:
            used[kind] = 1
    start = None
    for number in range(old.full_blocks):
        free = not used[number] and not zero[number]
        if free and start is None:
            start = number
        elif not free and start is not None:
            yield start * BLOCK, (number - start) * BLOCK
            start = None
    if start is not None:
        yield start * BLOCK, (old.full_blocks - start) * BLOCK
    if old.size % BLOCK:
        yield old.full_blocks * BLOCK, old.size % BLOCK


def encode_images(old: Path, new: Path, out: BinaryIO) -> EncodeStats:
    """Write the delta that turns image `old` into image `new` to `out`."""
    began = time.monotonic()
    try:
        old_fd = os.open(old, os.O_RDONLY)
    except OSError as err:
        raise InputError(f"{old}: {err.strerror}") from None
    try:
        try:
            new_fd = os.open(new, os.O_RDONLY)
        except OSError as err:
            raise InputError(f"{new}: {err.strerror}") from None
        try:
            return _encode(old_fd, new_fd, out, began)
        finally:
            os.close(new_fd)
    finally:
        os.close(old_fd)


def _encode(old_fd: int, new_fd: int, out: BinaryIO, began: float) -> EncodeStats:
    old_img, index, zero = index_old(old_fd, os.fstat(old_fd).st_size)
    new_img, mapping = map_new(new_fd, os.fstat(new_fd).st_size, old_img, index)
    del index
    writer = SegmentWriter(
        out,
        old_size=old_img.size,
        new_size=new_img.size,
        old_sha=old_img.sha256,
        new_sha=new_img.sha256,
    )
    matcher = ResidueMatcher(
        old_img, ResidueIndex(old_img, _unreferenced(old_img, mapping, zero)), writer
    )
    if new_img.size % BLOCK:
        mapping.append(NEW_DATA)  # the partial last block
    previous = None
    runs = list(_runs(mapping))
    for number, (first, count, kind) in enumerate(runs):
        if kind == ZERO:
            writer.zero(count * BLOCK)
        elif kind >= 0:
            writer.copy(kind * BLOCK, count * BLOCK)
        else:
            start = first * BLOCK
            end = min(new_img.size, start + count * BLOCK)
            hints = []
            if previous is not None:
                hints.append(previous)
            following = runs[number + 1][2] if number + 1 < len(runs) else ZERO
            if following >= 0:
                hints.append(following * BLOCK - (end - start))
            if matcher.last_diagonal is not None:
                hints.append(start + matcher.last_diagonal)
            for at in range(start, end, _RUN):
                data = new_img.read(at, min(_RUN, end - at))
                matcher.encode(at, data, hints if at == start else ())
        previous = (kind + count) * BLOCK if kind >= 0 else None
    writer.close()
    counts = writer.counts
    return EncodeStats(
        old_size=old_img.size,
        new_size=new_img.size,
        delta_size=writer.size,
        copy_bytes=counts.copy,
        zero_bytes=counts.zero,
        diff_bytes=counts.diff,
        add_bytes=counts.add,
        ops=counts.ops,
        segments=counts.segments,
        seconds=time.monotonic() - began,
    )
