"""Byte-wise add and subtract mod 256 of two equal-length buffers, SWAR on big ints.

A DIFF op stores (new - old) mod 256 per byte (bsdiff's trick: code whose
addresses shifted differs from its old version in a few bytes per word, so the
diff is mostly zeros and compresses far better than the new bytes). Python has
no vector ops in the stdlib; one big-int expression per buffer runs at C speed.
"""

from __future__ import annotations

_LOW_CACHE: dict[int, tuple[int, int]] = {}


def _masks(size: int) -> tuple[int, int]:
    masks = _LOW_CACHE.get(size)
    if masks is None:
        masks = (int.from_bytes(b"\x7f" * size, "little"), int.from_bytes(b"\x80" * size, "little"))
        if len(_LOW_CACHE) > 8:
            _LOW_CACHE.clear()
        _LOW_CACHE[size] = masks
    return masks


def add_bytes(a: bytes | memoryview, b: bytes | memoryview) -> bytes:
    """(a + b) mod 256 per byte; a and b have the same length."""
    size = len(a)
    low, high = _masks(size)
    x = int.from_bytes(a, "little")
    y = int.from_bytes(b, "little")
    # the low 7 bits add without crossing into the next byte; bit 7 is a carry-less xor
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(size, "little")


def sub_bytes(a: bytes | memoryview, b: bytes | memoryview) -> bytes:
    """(a - b) mod 256 per byte; a and b have the same length."""
    size = len(a)
    low, high = _masks(size)
    x = int.from_bytes(a, "little")
    y = int.from_bytes(b, "little")
    # setting bit 7 of every byte of a first means no byte borrows from its neighbour
    return (((x | high) - (y & low)) ^ ((x ^ ~y) & high)).to_bytes(size, "little")
