"""Mender device API v1 (and the v2 deployment check) over the standard library.

Bodies are small and capped; downloads are streamed and resume with `Range`
after a dropped connection. TLS verification is on unless SkipVerify;
`ServerCertificate` adds a private CA; HTTPS_PROXY/NO_PROXY are honoured
(urllib's ProxyHandler reads them). Spec: docs/device-api.md.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AgentError
from .identity import DeviceKey

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
API = "/api/devices"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


class ServerError(AgentError):
    """The server is unreachable or answered something we cannot use."""


class Unauthorized(ServerError):
    """401: the device is not (or no longer) accepted, or the token expired."""


class DeploymentAborted(ServerError):
    """409 on a status report: the deployment was aborted on the server."""


@dataclass(frozen=True, slots=True)
class Deployment:
    id: str
    artifact_name: str
    uri: str
    device_types: tuple[str, ...]


class DeviceClient:
    """One device's view of the server. `token` is set by `authenticate()`."""

    def __init__(
        self,
        server_url: str,
        *,
        ca_file: str | None = None,
        skip_verify: bool = False,
        timeout: float = 30.0,
    ) -> None:
        url = server_url.rstrip("/")
        self.base = url if "://" in url else f"https://{url}"
        self.timeout = timeout
        context = ssl.create_default_context()
        if ca_file:
            try:
                context.load_verify_locations(cafile=ca_file)
            except (OSError, ssl.SSLError) as err:
                raise ServerError(f"ServerCertificate {ca_file}: cannot load ({err})") from None
        if skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            log.warning("certificate verification skipped (SkipVerify)")
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
        self.token: str | None = None

    # -- plumbing -----------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> tuple[int, bytes]:
        url = path if "://" in path else f"{self.base}{API}{path}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if auth and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        deadline = time.monotonic() + self.timeout * 2
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, _read_capped(response, deadline, url)
        except urllib.error.HTTPError as err:
            data = _read_capped(err, deadline, url) if err.fp else b""
            if err.code == 401:
                raise Unauthorized(f"{method} {path}: 401 unauthorized {_message(data)}") from None
            return err.code, data
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            raise ServerError(f"{method} {url}: {reason}") from None

    def _json(
        self, method: str, path: str, doc: object, expect: tuple[int, ...]
    ) -> tuple[int, bytes]:
        body = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        status, data = self._request(method, path, body)
        if status not in expect:
            raise ServerError(f"{method} {path}: unexpected {status} {_message(data)}")
        return status, data

    # -- endpoints ----------------------------------------------------------
    def authenticate(self, id_data: str, key: DeviceKey, tenant_token: str = "") -> str:
        """POST auth_requests signed with the device key; 200 gives the JWT."""
        doc = {"id_data": id_data, "tenant_token": tenant_token, "pubkey": key.public_pem()}
        body = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        headers = {"X-MEN-Signature": key.sign(body), "Authorization": f"Bearer {tenant_token}"}
        status, data = self._request(
            "POST", "/v1/authentication/auth_requests", body, headers, auth=False
        )
        if status != 200:
            raise ServerError(f"authentication: unexpected {status} {_message(data)}")
        token = data.decode("ascii", "replace").strip()
        if token.count(".") != 2:
            raise ServerError("authentication: the server's answer is not a token")
        self.token = token
        return token

    def put_inventory(self, attributes: list[dict[str, object]]) -> None:
        path = "/v1/inventory/device/attributes"
        status, _ = self._json("PUT", path, attributes, (200, 405))
        if status == 405:  # servers of the Mender 2.5 era only take PATCH
            self._json("PATCH", path, attributes, (200,))

    def next_deployment(self, provides: dict[str, str]) -> Deployment | None:
        """v2 POST, then v1 POST, then v1 GET, moving on after a 404 as mender 3.4 does."""
        tries: list[tuple[str, str, object]] = [
            ("POST", "/v2/deployments/device/deployments/next", {"device_provides": provides}),
            ("POST", "/v1/deployments/device/deployments/next", provides),
        ]
        for method, path, doc in tries:
            status, data = self._json(method, path, doc, (200, 204, 404))
            if status != 404:
                return _deployment(status, data)
        query = urllib.parse.urlencode(
            {
                "artifact_name": provides.get("artifact_name", ""),
                "device_type": provides.get("device_type", ""),
            }
        )
        status, data = self._request("GET", f"/v1/deployments/device/deployments/next?{query}")
        if status not in (200, 204):
            raise ServerError(f"deployment check: unexpected {status} {_message(data)}")
        return _deployment(status, data)

    def report_status(self, deployment_id: str, status: str, substate: str | None = None) -> None:
        doc: dict[str, str] = {"status": status}
        if substate:
            doc["substate"] = substate
        path = f"/v1/deployments/device/deployments/{deployment_id}/status"
        code, _ = self._json("PUT", path, doc, (200, 204, 409))
        if code == 409:
            raise DeploymentAborted(f"deployment {deployment_id} was aborted on the server")

    def upload_log(self, deployment_id: str, messages: list[dict[str, str]]) -> None:
        path = f"/v1/deployments/device/deployments/{deployment_id}/log"
        self._json("PUT", path, {"messages": messages}, (200, 204))

    def open_download(self, uri: str, **kwargs: object) -> ResumableDownload:
        return ResumableDownload(self._opener, uri, timeout=self.timeout, **kwargs)  # type: ignore[arg-type]


def _read_capped(response, deadline: float, url: str) -> bytes:
    parts, total = [], 0
    while chunk := response.read(65536):
        total += len(chunk)
        if total > MAX_BODY:
            raise ServerError(f"{url}: response larger than {MAX_BODY} bytes")
        if time.monotonic() > deadline:
            raise ServerError(f"{url}: response too slow")
        parts.append(chunk)
    return b"".join(parts)


def _message(data: bytes) -> str:
    try:
        doc = json.loads(data)
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            return f"({doc['error'][:200]})"
    except ValueError:
        pass
    return ""


def _deployment(status: int, data: bytes) -> Deployment | None:
    if status == 204:
        return None
    try:
        doc = json.loads(data)
        artifact = doc["artifact"]
        deployment = Deployment(
            id=str(doc["id"]),
            artifact_name=str(artifact["artifact_name"]),
            uri=str(artifact["source"]["uri"]),
            device_types=tuple(str(t) for t in artifact["device_types_compatible"]),
        )
    except (ValueError, KeyError, TypeError):
        raise ServerError("deployment check: malformed answer from the server") from None
    if not deployment.device_types:
        raise ServerError("deployment check: answer lists no compatible device types")
    return deployment


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
        self._response = self._open(0)

    def _open(self, offset: int):
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        request = urllib.request.Request(self._uri, headers=headers)
        try:
            response = self._opener.open(request, timeout=self._timeout)
        except urllib.error.HTTPError as err:
            raise ServerError(f"download: server answered {err.code} (expired link?)") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            raise _Retryable(str(getattr(err, "reason", err))) from None
        if offset == 0:
            if response.status != 200:
                raise ServerError(f"download: unexpected status {response.status}")
            length = response.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise ServerError("download: the server sent no Content-Length")
            self.size = int(length)
            return response
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if response.status != 206 or match is None:
            raise ServerError("download: the server cannot resume (no 206 with Content-Range)")
        start, total = int(match.group(1)), int(match.group(3))
        if total != self.size or start > offset:
            raise ServerError("download: the resumed range does not fit the first response")
        skip = offset - start
        while skip:  # the server started earlier than asked: drop what we have
            skip -= len(response.read(min(skip, 1 << 16)) or b"x")
        return response

    def read(self, size: int) -> bytes:
        while True:
            try:
                data = self._response.read(size)
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
            time.sleep(min(self._backoff * 2 ** (self.resumes - 1), 30.0))
            with contextlib.suppress(OSError):
                self._response.close()
            try:
                self._response = self._open(self.offset)
                return
            except _Retryable as err:
                error = str(err)

    def close(self) -> None:
        self._response.close()


class _Retryable(ServerError):
    pass
