"""Mender device API v1 (and the v2 deployment check) over the standard library.

Bodies are small and capped; downloads are streamed and resume with `Range`
after a dropped connection (../download.py). TLS (../tls.py): verification is
on unless SkipVerify; `ServerCertificate` adds a private CA. HTTPS_PROXY/NO_PROXY
are honoured (urllib's ProxyHandler reads them). Spec: docs/device-api.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

from .. import window
from ..core.errors import Aborted
from ..core.record import Deployment
from ..download import USER_AGENT, ResumableDownload, open_download
from ..errors import ServerError
from ..tls import tls_context

__all__ = ["Deployment", "DeploymentAborted", "DeviceClient", "ServerError", "Unauthorized"]

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
API = "/api/devices"


class Unauthorized(ServerError):
    """401: the device is not (or no longer) accepted, or the token expired."""


class DeploymentAborted(ServerError, Aborted):
    """409 on a status report: the deployment was aborted on the server."""


class Signer(Protocol):
    def public_pem(self) -> str: ...

    def sign(self, body: bytes) -> str: ...


class _Watchdog:
    """Bounds a whole request in time: slow-loris headers or bodies cannot hold us.

    The socket timeout bounds each read, not a server that drips one byte per
    read. The sockets a request opens (redirects included) are recorded as they
    connect, and a timer shuts them down at the deadline; the blocked read then
    fails like a dropped connection. The socket, not the connection: urllib
    drops `conn.sock` once the headers are in, while the body is still read
    from that socket.
    """

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []
        self.fired = False

    def factory(self, base: type[http.client.HTTPConnection]):
        def make(host: str, **kwargs: object) -> http.client.HTTPConnection:
            conn = base(host, **kwargs)  # type: ignore[arg-type]
            connect = conn.connect

            def connect_and_record() -> None:
                connect()
                self.socks.append(conn.sock)

            conn.connect = connect_and_record  # type: ignore[method-assign]
            return conn

        return make

    def fire(self) -> None:
        self.fired = True
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @contextlib.contextmanager
    def armed(self, seconds: float):
        self.socks.clear()
        self.fired = False
        timer = threading.Timer(seconds, self.fire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self._watchdog = watchdog

    def http_open(self, req):
        return self.do_open(self._watchdog.factory(http.client.HTTPConnection), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._watchdog = watchdog
        self._ctx = context

    def https_open(self, req):
        return self.do_open(
            self._watchdog.factory(http.client.HTTPSConnection), req, context=self._ctx
        )


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (unverified: the token is opaque to us), or None."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp") if isinstance(claims, dict) else None
        return float(exp) if isinstance(exp, int | float) else None
    except (IndexError, ValueError, binascii.Error, RecursionError):
        return None


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
        context = tls_context(ca_file, skip_verify)
        self._context = context
        self._watchdog = _Watchdog()
        self._opener = urllib.request.build_opener(
            _HTTPHandler(self._watchdog), _HTTPSHandler(self._watchdog, context)
        )
        self._opener.addheaders = [("User-Agent", USER_AGENT)]
        self.token: str | None = None
        self.token_expires: float | None = None

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
        where = f"{method} {url.split('?')[0]}"
        with self._watchdog.armed(self.timeout * 2):
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    return response.status, _read_capped(response, deadline, where)
            except urllib.error.HTTPError as err:
                try:
                    data = _read_capped(err, deadline, where) if err.fp else b""
                except (OSError, http.client.HTTPException):
                    data = b""
                if err.code == 401:
                    raise Unauthorized(f"{where}: 401 unauthorized {_message(data)}") from None
                if 300 <= err.code < 400:
                    raise ServerError(f"{where}: {err.code} {err.reason}") from None
                return err.code, data
            except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
                if self._watchdog.fired:
                    raise ServerError(
                        f"{where}: no full answer within {self.timeout * 2:g} s"
                    ) from None
                reason = getattr(err, "reason", err) or type(err).__name__
                raise ServerError(f"{where}: {reason}") from None

    def _json(
        self, method: str, path: str, doc: object, expect: tuple[int, ...]
    ) -> tuple[int, bytes]:
        body = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        status, data = self._request(method, path, body)
        if status not in expect:
            raise ServerError(f"{method} {path}: unexpected {status} {_message(data)}")
        return status, data

    # -- endpoints ----------------------------------------------------------
    def authenticate(self, id_data: str, key: Signer, tenant_token: str = "") -> str:
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
        self.token_expires = token_expiry(token)
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

    def open_download(self, uri: str, **limits: object) -> ResumableDownload:
        """The artifact at `uri` (download.py), with this client's TLS and timeout."""
        return open_download(uri, self._context, timeout=self.timeout, **limits)


def _read_capped(response, deadline: float, url: str) -> bytes:
    """The body, at most MAX_BODY bytes, refused past `deadline` (slow-loris)."""
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
    except (ValueError, RecursionError):  # json recurses per level: deep nesting ends here
        pass
    return ""


def _install_window(doc: object) -> str | None:
    """The optional `install_window` {"start": "HH:MM", "end": "HH:MM"} (docs/device-api.md,
    "Install windows"); ValueError when malformed or never open."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise ValueError("install_window")
    try:
        return str(window.from_parts(doc.get("start"), doc.get("end")))
    except ValueError:
        raise ServerError(
            f"deployment check: install_window {window.MESSAGE.removeprefix('must be ')}"
        ) from None


def _full_source(doc: object) -> str | None:
    """pyupdate's `artifact.pyupdate_full_source` {"uri", "expire"}, sent with a delta
    artifact: the full one's link (docs/agent.md, "Delta updates"). Its `expire`, like
    `source`'s, is the server's business: an expired link answers 403."""
    if doc is None:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("uri"), str) or not doc["uri"]:
        raise ValueError("pyupdate_full_source")
    return str(doc["uri"])


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
            install_window=_install_window(doc.get("install_window")),
            full_source=_full_source(artifact.get("pyupdate_full_source")),
        )
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: deep JSON
        raise ServerError("deployment check: malformed answer from the server") from None
    if not deployment.device_types:
        raise ServerError("deployment check: answer lists no compatible device types")
    return deployment
