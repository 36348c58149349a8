"""Building blocks for the delta tests: generated images, encoding, applying."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

from pyupdate_artifact.delta import DeltaApplier
from pyupdate_host.delta import encode_images

BLOCK = 4096


def rng(seed: int) -> random.Random:
    return random.Random(seed)


def code_like(r: random.Random, size: int) -> bytes:
    """Bytes with the texture of machine code: short words, repeats, 4-byte addresses."""
    words = [r.randbytes(r.randint(2, 7)) for _ in range(256)]
    out = bytearray()
    while len(out) < size:
        out += r.choice(words)
        if r.random() < 0.2:
            out += r.randint(0, 1 << 20).to_bytes(4, "little")
    return bytes(out[:size])


def shift_addresses(data: bytes, r: random.Random, every: int = 40) -> bytes:
    """Rewrites a 4-byte word every ~`every` bytes, as relinked code does."""
    out = bytearray(data)
    at = r.randint(0, every)
    while at + 4 <= len(out):
        word = int.from_bytes(out[at : at + 4], "little")
        out[at : at + 4] = ((word + 0x40) & 0xFFFFFFFF).to_bytes(4, "little")
        at += r.randint(every // 2, every * 3 // 2)
    return bytes(out)


def encode(tmp: Path, old: bytes, new: bytes) -> bytes:
    (tmp / "old.img").write_bytes(old)
    (tmp / "new.img").write_bytes(new)
    out = io.BytesIO()
    encode_images(tmp / "old.img", tmp / "new.img", out)
    return out.getvalue()


def apply(
    base: Path,
    delta: bytes,
    *,
    expect_base: str,
    expect_result: str,
    step: int = 65536,
) -> bytes:
    """Feed `delta` in `step`-sized writes; return the output image."""
    result = bytearray()
    with open(base, "rb") as slot:
        applier = DeltaApplier(
            slot, result.extend, expect_base=expect_base, expect_result=expect_result
        )
        for at in range(0, len(delta), step):
            applier.write(delta[at : at + step])
        applier.finish()
    return bytes(result)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def round_trip(tmp: Path, old: bytes, new: bytes) -> bytes:
    """Encode, apply to OLD, check the result is NEW bit for bit; return the delta."""
    delta = encode(tmp, old, new)
    result = apply(tmp / "old.img", delta, expect_base=sha(old), expect_result=sha(new))
    assert result == new
    return delta
