"""Block-parallel compression: the input cut into fixed blocks, each compressed
on a thread pool, the results handed to `out` in input order.

Each block becomes a self-contained unit (gzip members, a zstd frame) that
any reader of the format takes as part of one stream, so both cores work on
the payload and memory stays at a few blocks in flight. The compressors
(zlib, isal, libdeflate, zstd) release the GIL while they work.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

Out = Callable[[bytes], None]
Job = Callable[[bytes | memoryview], bytes]


class ParallelBlocks:
    """write() uncompressed bytes, close() to finish; `job(block)` compresses one block."""

    def __init__(self, out: Out, job: Job, *, threads: int, block: int, ahead: int) -> None:
        self._out = out
        self._job = job
        self.block = block
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="compress")
        self._pending: deque[Future[bytes]] = deque()
        self._ahead = ahead
        self._pieces: list[bytes | memoryview] = []
        self._held = 0
        self._blocks = 0

    def write(self, data: bytes) -> None:
        if not self._held and len(data) == self.block:
            self._submit(data)
            return
        self._pieces.append(data)
        self._held += len(data)
        if self._held < self.block:
            return
        # Only pieces off the grid get here (the writer's first block, behind the
        # 512-byte tar header, and file tails): one join and views into it.
        joined = memoryview(b"".join(self._pieces))
        whole = self._held - self._held % self.block
        for start in range(0, whole, self.block):
            self._submit(joined[start : start + self.block])
        self._pieces = [joined[whole:]] if whole < self._held else []
        self._held -= whole

    def _submit(self, block: bytes | memoryview) -> None:
        self._blocks += 1
        self._pending.append(self._pool.submit(self._job, block))
        while len(self._pending) > self._ahead:
            self._out(self._pending.popleft().result())

    def close(self) -> None:
        try:
            if self._held or not self._blocks:  # an empty input is one empty unit
                self._submit(b"".join(self._pieces))
                self._pieces, self._held = [], 0
            while self._pending:
                self._out(self._pending.popleft().result())
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
