"""Byte-level matching of NEW's leftover blocks against OLD's unreferenced ones.

A changed file shares few whole blocks with its old version, but most of its
bytes: code that moved by some bytes, or whose addresses all shifted. Seeds
are SEED-byte windows of OLD's unreferenced blocks (the old versions of what
changed), indexed every `stride` bytes; NEW's residue is scanned at every
byte, skipping faster the longer nothing matched (as zstd does). A seed grows
both ways while at least half the bytes agree (bsdiff's rule), and the region
becomes a DIFF op of (new - old) mod 256, mostly zeros, or a COPY when exact.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyupdate_artifact.delta.bytesum import sub_bytes

from .blocks import Image
from .segments import SegmentWriter

SEED = 16
MAX_ENTRIES = 2 << 20  # index size cap (~110 bytes each): the stride grows past it
MIN_REGION = 32
_CHUNK = 16  # granularity at which a growing region is scored
_DROP = 128  # stop growing once the score fell this far below its best
_SKIP = 7  # step grows by one every 2**_SKIP bytes without a match
_READ = 8 << 20


class ResidueIndex:
    def __init__(self, old: Image, runs: Iterable[tuple[int, int]]) -> None:
        runs = list(runs)
        total = sum(length for _, length in runs)
        stride = SEED
        while total // stride > MAX_ENTRIES:
            stride *= 2
        self.stride = stride
        self.entries: dict[int, int] = {}
        for offset, length in runs:
            self._add(old, offset, length)

    def _add(self, old: Image, offset: int, length: int) -> None:
        entries, stride = self.entries, self.stride
        end = offset + length
        while offset + SEED <= end:
            data = old.read(offset, min(_READ, end - offset))
            for p in range(0, len(data) - SEED + 1, stride):
                entries[hash(data[p : p + SEED])] = offset + p
            offset += (len(data) - SEED) // stride * stride + stride


class ResidueMatcher:
    def __init__(self, old: Image, index: ResidueIndex, writer: SegmentWriter) -> None:
        self._old = old
        self._index = index.entries
        self._writer = writer
        self.last_diagonal: int | None = None  # old - new offset of the last region

    def encode(self, new_at: int, data: bytes, hints: Iterable[int]) -> None:
        """Emit ops for `data`, NEW's bytes at `new_at`; hints are likely OLD offsets of data[0]."""
        n = len(data)
        lit = pos = miss = 0
        best = None
        for hint in hints:
            region = self._grow(data, 0, hint, 0)
            if region is not None and (best is None or region[1] > best[1]):
                best = region
        if best is not None:
            lit = pos = self._emit(data, 0, best, new_at)
        get = self._index.get
        old = self._old
        while pos + SEED <= n:
            seed = data[pos : pos + SEED]
            at = get(hash(seed))
            if at is not None and old.read(at, SEED) == seed:
                region = self._grow(data, pos, at, lit)
                if region is not None:
                    lit = pos = self._emit(data, lit, region, new_at)
                    miss = 0
                    continue
            miss += 1
            pos += 1 + (miss >> _SKIP)
        if lit < n:
            self._writer.add(memoryview(data)[lit:])

    def _emit(self, data: bytes, lit: int, region: tuple[int, int, int], new_at: int) -> int:
        start, length, old_at = region
        if start > lit:
            self._writer.add(memoryview(data)[lit:start])
        diff = sub_bytes(data[start : start + length], self._old.read(old_at, length))
        if diff.count(0) == length:
            self._writer.copy(old_at, length)
        else:
            self._writer.diff(old_at, diff)
        self.last_diagonal = old_at - (new_at + start)
        return start + length

    def _grow(self, data: bytes, pos: int, at: int, lit: int) -> tuple[int, int, int] | None:
        """(start, length, old offset) of the region around data[pos] ~ old[at], or None."""
        if at < 0 or at >= self._old.size:
            return None
        forward = self._score(data, pos, at, min(len(data) - pos, self._old.size - at), 1)
        backward = self._score(data, pos, at, min(pos - lit, at), -1)
        if forward + backward < MIN_REGION:
            return None
        return pos - backward, forward + backward, at - backward

    def _score(self, data: bytes, pos: int, at: int, limit: int, sign: int) -> int:
        """How far from pos (forward or backward) the bytes agree at least half the time."""
        done = score = best = best_len = 0
        step = 256
        while done < limit:
            size = min(step, limit - done)
            if sign > 0:
                new = data[pos + done : pos + done + size]
                diff = sub_bytes(new, self._old.read(at + done, size))
                chunks = range(0, size, _CHUNK)
            else:
                new = data[pos - done - size : pos - done]
                diff = sub_bytes(new, self._old.read(at - done - size, size))
                chunks = range(size, 0, -_CHUNK)
            for j in chunks:
                lo, hi = (j, min(j + _CHUNK, size)) if sign > 0 else (max(j - _CHUNK, 0), j)
                score += 2 * diff.count(0, lo, hi) - (hi - lo)
                if score > best:
                    best = score
                    best_len = done + (hi if sign > 0 else size - lo)
                elif score < best - _DROP:
                    return best_len
            done += size
            step = min(step * 2, 1 << 16)
        return best_len
