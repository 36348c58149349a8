"""Stream a multipart upload: small fields into memory, the file part into a temp file,
or, for an object store, on into the store as it arrives (api/streaming.py).

Starlette's form parser would spool the artifact into the system temp dir; we
write it under the data dir, hash it on the way, and stop at the size limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from pyupdate_server.api.streaming import StreamingArtifact
from pyupdate_server.errors import (
    BadRequest,
    InsufficientStorage,
    ServerError,
    TooLarge,
    storage_full,
)

MAX_FIELD = 64 * 1024


@dataclass(slots=True)
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file_path: Path | None = None
    stream: StreamingArtifact | None = None  # instead of file_path: sent on as it came
    file_size: int = 0
    sha256: str = ""

    def discard(self) -> None:
        """Nothing kept: the temp file removed, or the streamed upload aborted."""
        if self.file_path is not None:
            self.file_path.unlink(missing_ok=True)
            self.file_path = None
        if self.stream is not None:
            self.stream.abort()
            self.stream = None


class _Collector:
    def __init__(
        self,
        file_field: str,
        tmp_dir: Path,
        max_size: int,
        stream_to: Callable[[], StreamingArtifact] | None = None,
    ) -> None:
        self.file_field = file_field
        self.stream_to = stream_to
        self.tmp_dir = tmp_dir
        self.max_size = max_size
        self.upload = Upload()
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._buf = bytearray()
        self._fh: object = None
        self._hash = hashlib.sha256()
        self.error: Exception | None = None

    def on_part_begin(self) -> None:
        self._headers = {}
        self._buf = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name == self.file_field:
            if self.upload.file_path is not None or self.upload.stream is not None:
                raise BadRequest(f"more than one {self.file_field!r} part")
            if self.stream_to is not None:
                self.upload.stream = self.stream_to()
                self._fh = self.upload.stream
                return
            fd, name = tempfile.mkstemp(dir=self.tmp_dir, suffix=".upload")
            self.upload.file_path = Path(name)
            self._fh = os.fdopen(fd, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._fh is not None:
            self.upload.file_size += len(chunk)
            if self.upload.file_size > self.max_size:
                raise TooLarge(f"artifact is larger than the limit of {self.max_size} bytes")
            self._hash.update(chunk)
            self._fh.write(chunk)  # type: ignore[attr-defined]
        else:
            self._buf += chunk
            if len(self._buf) > MAX_FIELD:
                raise TooLarge(f"form field {self._name!r} over {MAX_FIELD} bytes")

    def on_part_end(self) -> None:
        if self._fh is not None:
            self._fh.close()  # type: ignore[attr-defined]
            self._fh = None
            self.upload.sha256 = self._hash.hexdigest()
        elif self._name:
            self.upload.fields[self._name] = self._buf.decode("utf-8", "replace")

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()  # type: ignore[attr-defined]
            self._fh = None


async def receive_upload(
    request: Request,
    file_field: str,
    tmp_dir: Path,
    max_size: int,
    stream_to: Callable[[], StreamingArtifact] | None = None,
) -> Upload:
    """The form's fields, and its file part in a temp file under tmp_dir, or, with
    `stream_to`, sent on into the StreamingArtifact it makes (the caller finishes it)."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise BadRequest("upload must be multipart/form-data")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_size + MAX_FIELD * 16:
        raise TooLarge(f"upload is larger than the limit of {max_size} bytes")
    collector = _Collector(file_field, tmp_dir, max_size, stream_to)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
    }
    parser = MultipartParser(options[b"boundary"], callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            stream = collector.upload.stream
            while stream is not None and stream.ready():
                await run_in_threadpool(stream.send_part)  # to the store: off the loop
        parser.finalize()
    except ClientDisconnect:
        collector.close()
        await run_in_threadpool(collector.upload.discard)
        raise BadRequest("client disconnected during upload") from None
    except ServerError:  # refused (400, 413), or the store went away (503)
        collector.close()
        await run_in_threadpool(collector.upload.discard)
        raise
    except Exception as exc:  # the parser raises its own error types on garbage
        collector.close()
        await run_in_threadpool(collector.upload.discard)
        if storage_full(exc):
            raise InsufficientStorage(
                f"server storage is full: the upload did not fit in {tmp_dir}"
            ) from None
        if isinstance(exc, OSError):
            raise
        raise BadRequest(f"malformed multipart body: {exc}") from None
    collector.close()
    if collector.upload.file_path is None and collector.upload.stream is None:
        raise BadRequest(f"multipart body has no {file_field!r} part")
    return collector.upload
