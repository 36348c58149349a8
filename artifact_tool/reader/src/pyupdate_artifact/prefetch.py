"""Read a source ahead on a worker thread, so decompression overlaps hashing and writing.

zlib, lzma, zstd and hashlib release the GIL on large buffers, so two threads
really use two cores. The queue is bounded: memory stays at a few chunks.
"""

from __future__ import annotations

import contextlib
import queue
import threading

from .tarsafe import ByteSource

CHUNK = 1 << 20
DEPTH = 6
_END = object()


class Prefetcher:
    """A ByteSource whose reads come from `source.read(CHUNK)` run on a thread."""

    def __init__(self, source: ByteSource, chunk: int = CHUNK, depth: int = DEPTH) -> None:
        self._source = source
        self._chunk = chunk
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._current = memoryview(b"")
        self._done = False
        self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._source.read(self._chunk)
                self._put(data if data else _END)
                if not data:
                    return
        except BaseException as err:  # handed to the consumer, raised there
            self._put(err)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int) -> bytes:
        if not self._current:
            if self._done:
                return b""
            item = self._queue.get()
            if item is _END:
                self._done = True
                return b""
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._current = memoryview(item)  # type: ignore[arg-type]
        if size >= len(self._current):
            out, self._current = self._current, memoryview(b"")
        else:
            out, self._current = self._current[:size], self._current[size:]
        return out.tobytes() if len(out) != len(out.obj) else out.obj  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the worker (and the source's own threads); safe to call twice and after an error."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()
        close = getattr(self._source, "close", None)
        if close is not None:
            close()
