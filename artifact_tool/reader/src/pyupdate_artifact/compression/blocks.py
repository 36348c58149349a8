"""Block-parallel compression: the input cut into fixed blocks, each compressed
on a thread pool, the results handed to `out` in input order.

Each block becomes a self-contained unit (gzip members, a zstd frame) that
any reader of the format takes as part of one stream, so both cores work on
the payload and memory stays at a few blocks in flight. The compressors
(zlib, isal, libdeflate, zstd) release the GIL while they work.

The pool is a few threads and a queue, not concurrent.futures: the agent's
reader imports the compressor modules, and a device's Python need not ship
concurrent.futures (oe-core packages it in python3-asyncio, with logging).
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable

Out = Callable[[bytes], None]
Job = Callable[[bytes | memoryview], bytes]


def threads() -> int:
    """Pool size: one thread per core, at most 8 (each holds a block or two in flight)."""
    return max(1, min(os.cpu_count() or 1, 8))


class _Unit:
    """One block on its way through the pool: its input, then its result or error."""

    __slots__ = ("data", "done", "error", "result")

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = data
        self.done = threading.Event()
        self.result = b""
        self.error: BaseException | None = None

    def run(self, job: Job | None) -> None:
        try:
            if job is not None:  # None: the pool stopped, the unit is dropped
                self.result = job(self.data)
        except BaseException as err:  # raised in the writer's thread by wait()
            self.error = err
        finally:
            self.data = b""
            self.done.set()

    def wait(self) -> bytes:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result


class ParallelBlocks:
    """write() uncompressed bytes, close() to finish; `job(block)` compresses one block."""

    def __init__(self, out: Out, job: Job, *, threads: int, block: int, ahead: int) -> None:
        self._out = out
        self._job = job
        self.block = block
        self._threads = threads
        self._workers: list[threading.Thread] = []
        self._todo: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()
        self._stopped = False
        self._pending: deque[_Unit] = deque()
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
        if len(self._workers) < self._threads:
            worker = threading.Thread(target=self._work, name="compress", daemon=True)
            worker.start()
            self._workers.append(worker)
        unit = _Unit(block)
        self._pending.append(unit)
        self._todo.put(unit)
        while len(self._pending) > self._ahead:
            self._out(self._pending.popleft().wait())

    def _work(self) -> None:
        while (unit := self._todo.get()) is not None:
            unit.run(None if self._stopped else self._job)

    def close(self) -> None:
        try:
            if self._held or not self._blocks:  # an empty input is one empty unit
                self._submit(b"".join(self._pieces))
                self._pieces, self._held = [], 0
            while self._pending:
                self._out(self._pending.popleft().wait())
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the blocks not started, wait for the running ones; safe to call twice."""
        self._stopped = True
        for _ in self._workers:
            self._todo.put(None)
        for worker in self._workers:
            worker.join()
        self._workers = []
