"""Whole-block matching: which 4 KiB blocks of NEW exist anywhere in OLD.

Root filesystems keep file data on a 4 KiB grid, so an unchanged file is a run
of whole blocks even when the filesystem moved it. Blocks are keyed by
Python's 64-bit hash and every hit is compared byte for byte before use.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from dataclasses import dataclass

BLOCK = 4096
ZERO = -1  # block map entry: an all-zero block
NEW_DATA = -2  # block map entry: found nowhere in OLD as a whole block
_READ = 1 << 20
_ZERO_BLOCK = bytes(BLOCK)


@dataclass(frozen=True, slots=True)
class Image:
    fd: int
    size: int
    sha256: bytes

    @property
    def full_blocks(self) -> int:
        return self.size // BLOCK

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self.fd, length, offset)
        while len(data) < length:  # pipes and some block devices read short
            more = os.pread(self.fd, length - len(data), offset + len(data))
            if not more:
                raise OSError(f"short read at offset {offset + len(data)}")
            data += more
        return data


def _blocks(fd: int, size: int, digest: hashlib._Hash):
    """(block number, bytes) of every whole block, hashing the whole file on the way."""
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(_READ, size - offset), offset)
        if not chunk:
            raise OSError(f"short read at offset {offset}")
        digest.update(chunk)
        for start in range(0, len(chunk) - BLOCK + 1, BLOCK):
            yield (offset + start) // BLOCK, chunk[start : start + BLOCK]
        offset += len(chunk)


def index_old(fd: int, size: int) -> tuple[Image, dict[int, int], bytearray]:
    """OLD's sha256, hash -> first block number of each distinct non-zero block, zero flags."""
    digest = hashlib.sha256()
    index: dict[int, int] = {}
    zero = bytearray(size // BLOCK)
    for number, block in _blocks(fd, size, digest):
        if block == _ZERO_BLOCK:
            zero[number] = 1
        else:
            index.setdefault(hash(block), number)
    return Image(fd, size, digest.digest()), index, zero


def map_new(fd: int, size: int, old: Image, index: dict[int, int]) -> tuple[Image, array]:
    """NEW's sha256 and its block map: an OLD block number, ZERO or NEW_DATA per block.

    A block that also follows on from the previous block's match takes that
    neighbour, so unchanged files stay one COPY however often their blocks recur.
    """
    digest = hashlib.sha256()
    mapping = array("q")
    previous = NEW_DATA
    for _, block in _blocks(fd, size, digest):
        found = NEW_DATA
        if block == _ZERO_BLOCK:
            found = ZERO
        elif (
            previous >= 0
            and previous + 1 < old.full_blocks
            and old.read((previous + 1) * BLOCK, BLOCK) == block
        ):
            found = previous + 1
        else:
            candidate = index.get(hash(block))
            if candidate is not None and old.read(candidate * BLOCK, BLOCK) == block:
                found = candidate
        mapping.append(found)
        previous = found
    return Image(fd, size, digest.digest()), mapping
