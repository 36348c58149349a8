"""A stored artifact as an HTTP body: one Range (206/416), If-Range, HEAD, and reads sized to the client.

Starlette's FileResponse reads 64 KiB per worker-thread hop: a 1 GiB artifact left the
server at 334 MiB/s from a cold cache while `dd` read the file at 2.5 GiB/s. Fixed
big reads would cost memory where it hurts: on a fleet rollout thousands of slow devices
download at once, each holding one chunk. So the read size follows the client: 64 KiB
until the transfer has averaged more than 64 MiB/s over its first 16 MiB (more than any
socket buffer absorbs, so only a client that really takes that much gets there), then
doubling per fast send up to 4 MiB, and back to 64 KiB as soon as one send waits on a
slower client. Spec: docs/device-api.md#download.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

MIN_CHUNK = 64 << 10
MAX_CHUNK = 4 << 20
FAST_CLIENT = 64 << 20  # bytes/s
PROVEN = 16 << 20  # bytes sent before the average rate counts
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(Exception):
    """The Range lies wholly past the end of the file (RFC 9110 15.5.17)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`(start, end)` half-open for one satisfiable byte range, None for "send it all".

    A missing, malformed or multi-range header is ignored (RFC 9110 14.2 allows it; every
    client we serve asks for one range, `bytes=N-`). Raises RangeNotSatisfiable.
    """
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:  # suffix: the last N bytes
        if not last:
            return None
        if int(last) == 0:
            raise RangeNotSatisfiable
        return max(size - int(last), 0), size
    start = int(first)
    end = size if not last else int(last) + 1
    if last and end <= start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size)


def next_chunk(chunk: int, sent: int, seconds: float, total: int, elapsed: float) -> int:
    """The next read size, from the last send (`sent` bytes in `seconds`) and the transfer so far.

    Doubles while the client keeps up, back to the minimum when it does not.
    """
    proven = total >= PROVEN and total > elapsed * FAST_CLIENT
    if proven and sent > seconds * FAST_CLIENT:
        return min(chunk * 2, MAX_CHUNK)
    return MIN_CHUNK


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII `filename` and, when that had to change, the exact name
    as RFC 5987 `filename*` (RFC 6266 4.3): any artifact name makes a valid header."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


class ArtifactFileResponse(Response):
    """Serves `path` (whole, or the request's single Range) with Content-Length."""

    def __init__(self, path: Path, request_headers: Headers, media_type: str, filename: str):
        stat = path.stat()
        size = stat.st_size
        last_modified = formatdate(stat.st_mtime, usegmt=True)
        etag = f'"{hashlib.md5(f"{stat.st_mtime}-{size}".encode(), usedforsecurity=False).hexdigest()}"'
        headers = {
            "accept-ranges": "bytes",
            "content-disposition": content_disposition(filename),
            "last-modified": last_modified,
            "etag": etag,
        }
        if_range = request_headers.get("if-range")
        wanted = request_headers.get("range") if if_range in (None, etag, last_modified) else None
        super().__init__(media_type=media_type, headers=headers)
        self.path = path
        try:
            span = parse_range(wanted, size)
        except RangeNotSatisfiable:
            self.status_code, self.start, self.end = 416, 0, 0
            self.headers["content-range"] = f"bytes */{size}"
        else:
            self.start, self.end = span or (0, size)
            if span is not None:
                self.status_code = 206
                self.headers["content-range"] = f"bytes {self.start}-{self.end - 1}/{size}"
        self.headers["content-length"] = str(self.end - self.start)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if scope.get("method") == "HEAD" or self.start == self.end:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        fd = await anyio.to_thread.run_sync(os.open, self.path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, self.start, self.end - self.start, os.POSIX_FADV_SEQUENTIAL)
            position, chunk = self.start, MIN_CHUNK
            began = time.monotonic()
            while position < self.end:
                data = await anyio.to_thread.run_sync(
                    os.pread, fd, min(chunk, self.end - position), position
                )
                if not data:  # the file shrank under us: end the connection, not the length
                    raise RuntimeError(f"{self.path} ended at byte {position}")
                position += len(data)
                started = time.monotonic()
                more = position < self.end
                await send({"type": "http.response.body", "body": data, "more_body": more})
                now = time.monotonic()
                chunk = next_chunk(
                    chunk, len(data), now - started, position - self.start, now - began
                )
        finally:
            os.close(fd)
