"""The one artifact download, the daemon's and `pyupdate install URL`'s: it survives
dropped connections with `Range: bytes=<offset>-` from the last byte.

The answer to a resume must be 206 (or 200, as rclone's S3 server answers) with a
Content-Range for the same total, or 200 with the whole body again (a server that
ignores Range), whose first bytes are then skipped;
resumes are bounded in count and in time, with the one backoff rule
(backoff.py). A body slower than LOW_SPEED bytes per two timeouts counts
as a dropped connection; a certificate that does not verify is not retried.
Limits (docs/agent.md, "Network behaviour"): RequestTimeoutSeconds per read,
DownloadMaxResumes resumes within DownloadResumeSeconds.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from . import __version__
from .backoff import backoff
from .errors import ServerError

log = logging.getLogger(__name__)

LOW_SPEED = 1024
MAX_BACKOFF = 30.0
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
USER_AGENT = f"pyupdate/{__version__}"


def open_download(
    uri: str, context: ssl.SSLContext, *, timeout: float, **limits: object
) -> ResumableDownload:
    """Start downloading `uri` (tls.py's context); `limits` as for ResumableDownload.

    Its own opener, not the device API's: a download's length is not bounded by
    the API watchdog; ResumableDownload guards against a stalled or dripping body.
    HTTPS_PROXY/NO_PROXY are honoured (urllib's ProxyHandler).
    """
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    opener.addheaders = [("User-Agent", USER_AGENT)]
    return ResumableDownload(opener, uri, timeout=timeout, **limits)  # type: ignore[arg-type]


class ResumableDownload:
    """A read(n) stream of one artifact that survives dropped connections.

    On a broken read it asks again with `Range: bytes=<offset>-`, requires 206
    and a Content-Range for the same total, and goes on where it stopped:
    only the missing bytes cross the network again. Retries are bounded in
    count and in time.
    """

    def __init__(
        self,
        opener: urllib.request.OpenerDirector,
        uri: str,
        *,
        timeout: float = 30.0,
        max_resumes: int = 10,
        max_seconds: float = 600.0,
        backoff: float = 1.0,
        on_resume: Callable[[int], None] | None = None,
    ) -> None:
        self._opener = opener
        self._uri = uri
        self._timeout = timeout
        self._max_resumes = max_resumes
        self._deadline = time.monotonic() + max_seconds
        self._backoff = backoff
        self._on_resume = on_resume
        self.offset = 0
        self.resumes = 0
        self.size = -1
        self._window = max(2 * timeout, 1.0)
        self._window_start = time.monotonic()
        self._window_bytes = 0
        self._response = None
        try:
            self._response = self._open(0)
        except _Retryable as err:
            # a network error before the first byte is retried under the same bounds
            self._resume(str(err))

    def _open(self, offset: int):
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        request = urllib.request.Request(self._uri, headers=headers)
        try:
            response = self._opener.open(request, timeout=self._timeout)
        except urllib.error.HTTPError as err:
            hint = " (expired link?)" if err.code in (401, 403, 404, 410) else ""
            raise ServerError(f"download: server answered {err.code} {err.reason}{hint}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            cause = err.reason if isinstance(err, urllib.error.URLError) else err
            if isinstance(cause, ssl.SSLCertVerificationError):
                # a certificate that does not verify will not verify on a retry either
                raise ServerError(f"download: {cause}") from None
            raise _Retryable(str(cause)) from None
        if offset == 0:
            if response.status != 200:
                raise ServerError(f"download: unexpected status {response.status}")
            length = response.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise ServerError("download: the server sent no Content-Length")
            self.size = int(length)
            return response
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if response.status in (200, 206) and match is not None:
            # 200 with a Content-Range is rclone's S3 server's answer to a Range request
            start, total = int(match.group(1)), int(match.group(3))
        elif response.status == 200 and response.headers.get("Content-Length") == str(self.size):
            # a server or proxy that ignores Range sends the whole body again: resume by
            # skipping what we have (the artifact's own hashes still check every byte)
            start, total = 0, self.size
        else:
            raise ServerError(
                "download: the server cannot resume (no Content-Range, nor the whole body)"
            )
        if total != self.size or start > offset:
            raise ServerError("download: the resumed range does not fit the first response")
        skip = offset - start
        while skip:  # the server started earlier than asked: drop what we have
            skip -= len(response.read(min(skip, 1 << 16)) or b"x")
        return response

    def _read_some(self, size: int) -> bytes:
        """Up to `size` bytes, one recv at a time, so a dripping server is noticed."""
        data = self._response.read1(size)
        if len(data) == size or not data:
            self._count(len(data))
            return data
        buf = bytearray(data)
        self._count(len(data))
        while len(buf) < size:
            chunk = self._response.read1(size - len(buf))
            if not chunk:
                break
            buf += chunk
            self._count(len(chunk))
        return bytes(buf)

    def _count(self, n: int) -> None:
        """A body slower than LOW_SPEED bytes per window counts as a dropped connection."""
        self._window_bytes += n
        now = time.monotonic()
        if now - self._window_start >= self._window:
            slow = self._window_bytes < LOW_SPEED
            self._window_start, self._window_bytes = now, 0
            if slow:
                raise OSError(f"less than {LOW_SPEED} bytes in {self._window:g} s")

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            # the artifact reader asks for zero bytes of padding after a member whose
            # size is a multiple of 512: that is no end of stream
            return b""
        if size is None or size < 0:
            size = max(self.size - self.offset, 0) or 1
        while True:
            try:
                data = self._read_some(size)
            except (OSError, http.client.HTTPException) as err:
                data, error = b"", str(err) or type(err).__name__
            else:
                if data or self.offset >= self.size:
                    self.offset += len(data)
                    if self.offset > self.size:
                        raise ServerError("download: the server sent more than Content-Length")
                    return data
                error = f"connection closed at byte {self.offset} of {self.size}"
            self._resume(error)

    def _resume(self, error: str) -> None:
        while True:
            self.resumes += 1
            if self.resumes > self._max_resumes or time.monotonic() > self._deadline:
                raise ServerError(f"download failed after {self.resumes - 1} resumes: {error}")
            log.warning(
                "download interrupted, resuming", extra={"offset": self.offset, "error": error}
            )
            if self._on_resume is not None:
                self._on_resume(self.offset)
            time.sleep(backoff(self.resumes, MAX_BACKOFF, self._backoff))
            if self._response is not None:
                with contextlib.suppress(OSError):
                    self._response.close()
            try:
                self._response = self._open(self.offset)
                self._window_start, self._window_bytes = time.monotonic(), 0
                return
            except _Retryable as err:
                error = str(err)

    def close(self) -> None:
        if self._response is not None:
            self._response.close()


class _Retryable(ServerError):
    pass
