"""The device API played by an in-process HTTP server, for the agent's bad-input and client tests.

`LocalHTTP` hands every request to a function of the test; `FakeDeviceAPI` answers
authentication, inventory, status and log as the real server does and lets the
test make the deployment check or the download misbehave.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Seen:
    """One request a LocalHTTP server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


Handler = Callable[["_LocalHandler", Seen], None]


class _LocalHandler(http.server.BaseHTTPRequestHandler):
    server: _LocalServer
    protocol_version = "HTTP/1.0"  # one request per connection: a close ends each body

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                    body, time.monotonic())  # fmt: skip
        with self.server.lock:
            self.server.seen.append(seen)
        with contextlib.suppress(OSError):  # the client went away (timeouts under test)
            self.server.handle_request_fn(self, seen)

    do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = _any

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """A complete answer with a correct Content-Length (unless `headers` sets one)."""
        self.send_response(status)
        headers = {"Content-Length": str(len(body))} | (headers or {})
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status: int, doc: object) -> None:
        self.reply(status, json.dumps(doc).encode(), {"Content-Type": "application/json"})


class _LocalServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    handle_request_fn: Handler
    seen: list[Seen]
    lock: threading.Lock


class LocalHTTP:
    """`http.server` in a thread on 127.0.0.1; every request goes to `handle(h, seen)`."""

    def __init__(self, handle: Handler) -> None:
        self._server = _LocalServer(("127.0.0.1", 0), _LocalHandler)
        self._server.handle_request_fn = handle
        self._server.seen = []
        self._server.lock = threading.Lock()
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )  # a short poll: shutdown() waits for it
        self._thread.start()

    @property
    def seen(self) -> list[Seen]:
        with self._server.lock:
            return list(self._server.seen)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cut_every_answer(blob: bytes, cut: int, *, resumes_too: bool) -> Handler:
    """200 with the whole Content-Length but `cut` bytes, then a close; a Range request
    gets an honest 206, or (`resumes_too`) `cut` more bytes and a close again."""

    def handle(h: _LocalHandler, seen: Seen) -> None:
        rng = seen.headers.get("range")
        start = 0 if rng is None else int(rng.removeprefix("bytes=").rstrip("-"))
        body = blob[start : start + cut] if rng is None or resumes_too else blob[start:]
        headers = {"Content-Length": str(len(blob) - start)}
        if rng is not None:
            headers["Content-Range"] = f"bytes {start}-{len(blob) - 1}/{len(blob)}"
        h.reply(206 if rng else 200, body, headers)

    return handle


def fake_token(lifetime: float = 3600) -> str:
    """A JWT-shaped token with an `exp` claim (the agent reads only `exp`)."""

    def part(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(time.time() + lifetime)})}.c2ln"


NEXT_PATHS = (
    "/api/devices/v2/deployments/device/deployments/next",
    "/api/devices/v1/deployments/device/deployments/next",
)


class FakeDeviceAPI:
    """The device API played by a LocalHTTP server, with one part misbehaving.

    Authentication, inventory, status and log answer as the real server does.
    The deployment check goes to `check` (default: hand out `deployment` until
    the device reports a final status, then 204) and everything under
    `/download/` to `download`. `statuses` and `logs` record what the device
    reported.
    """

    def __init__(
        self,
        check: Handler | None = None,
        download: Handler | None = None,
        artifact_name: str = "release-bad",
        device_types: tuple[str, ...] = ("test-device",),
    ) -> None:
        self.check = check or self._hand_out
        self.download = download
        self.artifact_name = artifact_name
        self.device_types = device_types
        self.statuses: list[str] = []
        self.logs: list[dict] = []
        self.http = LocalHTTP(self._route)
        self.url = self.http.url

    def deployment(self) -> dict:
        return {
            "id": "dep-1",
            "artifact": {
                "artifact_name": self.artifact_name,
                "source": {"uri": f"{self.url}/download/dep-1", "expire": "2099-01-01T00:00:00Z"},
                "device_types_compatible": list(self.device_types),
            },
        }

    def _hand_out(self, h: _LocalHandler, seen: Seen) -> None:
        if any(s in ("success", "failure", "already-installed") for s in self.statuses):
            h.reply(204)
        else:
            h.reply_json(200, self.deployment())

    def _route(self, h: _LocalHandler, seen: Seen) -> None:
        path = seen.path.split("?")[0]
        if path.endswith("/authentication/auth_requests"):
            h.reply(200, fake_token().encode(), {"Content-Type": "application/jwt"})
        elif path.endswith("/inventory/device/attributes"):
            h.reply(200)
        elif path in NEXT_PATHS:
            self.check(h, seen)
        elif path.endswith("/status"):
            self.statuses.append(json.loads(seen.body)["status"])
            h.reply(204)
        elif path.endswith("/log"):
            self.logs.append(json.loads(seen.body))
            h.reply(204)
        elif path.startswith("/download/") and self.download is not None:
            self.download(h, seen)
        else:
            h.reply(404, b'{"error":"not found"}')

    def checks(self) -> list[Seen]:
        return [s for s in self.http.seen if s.path.split("?")[0] in NEXT_PATHS]

    def downloads(self) -> list[Seen]:
        return [s for s in self.http.seen if s.path.startswith("/download/")]

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> FakeDeviceAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
