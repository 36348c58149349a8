"""sha256 on its own thread: hashlib drops the GIL, so hashing the result overlaps
reading the base and writing the slot (a full install hashes on a thread too)."""

from __future__ import annotations

import hashlib
import queue
import threading

_DEPTH = 8  # pieces in flight: bounded memory (8 x 256 KiB)


class ThreadedSha256:
    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(_DEPTH)
        self._thread: threading.Thread | None = None
        self._result: str | None = None

    def update(self, data: bytes | memoryview) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="delta-sha256", daemon=True)
            self._thread.start()
        self._queue.put(data)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._digest.update(item)

    def hexdigest(self) -> str:
        if self._result is None:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
            self._result = self._digest.hexdigest()
        return self._result

    def close(self) -> None:
        """Stop the thread without a result (the apply failed)."""
        if self._thread is not None and self._result is None:
            self._queue.put(None)
            self._thread.join()
            self._result = ""
