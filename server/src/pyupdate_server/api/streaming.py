"""An artifact upload streamed into an object store and validated on the way.

The multipart parser hands the artifact's bytes to `write()` as they arrive. Every
`part_size` bytes go on as one part of a multipart upload (the store's `open_upload`)
and, through a pipe, to the artifact reader running in a thread of its own. At the end
`finish()` waits for the reader's verdict: a valid artifact completes the upload, an
invalid one aborts it, so the store never holds an object that failed validation. Memory
is one part plus a pipe buffer, whatever the artifact's size; nothing goes to local disk.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import BinaryIO

from pyupdate_artifact.model import ArtifactHeader
from pyupdate_server.storage.base import MultipartUpload

PART_SIZE = 8 * 1024 * 1024  # S3's minimum is 5 MiB for every part but the last


class StreamingArtifact:
    """Args:
    upload: where the bytes go (the store's multipart upload).
    validate: reads a whole artifact from a stream, returns its header or raises.
    part_size: bytes per part, and the most this holds in memory.
    """

    def __init__(
        self,
        upload: MultipartUpload,
        validate: Callable[[BinaryIO], ArtifactHeader],
        part_size: int = PART_SIZE,
    ) -> None:
        self._upload = upload
        self._part_size = part_size
        self._buf = bytearray()
        read_fd, write_fd = os.pipe()
        self._to_reader: BinaryIO | None = os.fdopen(write_fd, "wb")
        self._from_upload = os.fdopen(read_fd, "rb")
        self.header: ArtifactHeader | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._validate, args=(validate,), name="artifact-validate", daemon=True
        )
        self._thread.start()

    def _validate(self, validate: Callable[[BinaryIO], ArtifactHeader]) -> None:
        try:
            self.header = validate(self._from_upload)
        except BaseException as exc:  # handed to finish(), in the request's thread
            self.error = exc
        finally:
            # a reader that stopped early (refused, or done before trailing padding)
            # makes the next pipe write fail instead of block
            self._from_upload.close()

    # -- called by the multipart parser, on the event loop: no I/O here -----------
    def write(self, data: bytes) -> None:
        self._buf += data

    def close(self) -> None:
        """The part ended; finish() or abort() follows."""

    def ready(self) -> bool:
        return len(self._buf) >= self._part_size

    # -- called in a worker thread -------------------------------------------------
    def send_part(self) -> None:
        """One full part on to the reader and the store."""
        data = bytes(self._buf[: self._part_size])
        del self._buf[: self._part_size]
        self._send(data)

    def _send(self, data: bytes) -> None:
        if self._to_reader is not None:
            try:
                self._to_reader.write(data)  # blocks while the reader is busy
            except BrokenPipeError:
                self._close_pipe()  # the reader has its verdict: see finish()
        if self.error is None:
            self._upload.add_part(data)

    def _close_pipe(self) -> None:
        if self._to_reader is not None:
            with contextlib.suppress(OSError):
                self._to_reader.close()
            self._to_reader = None

    def finish(self) -> ArtifactHeader:
        """The last bytes, the reader's verdict, then the object completed (or aborted)."""
        try:
            while self.ready():
                self.send_part()
            if self._buf:
                data = bytes(self._buf)
                self._buf.clear()
                self._send(data)
            self._close_pipe()  # end of file for the reader
            self._thread.join()
            if self.error is not None:
                raise self.error
            assert self.header is not None
            self._upload.complete()
            return self.header
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Nothing kept: the reader stopped, the store's parts dropped (never raises)."""
        self._buf.clear()
        self._close_pipe()
        self._thread.join(timeout=60)
        self._upload.abort()
