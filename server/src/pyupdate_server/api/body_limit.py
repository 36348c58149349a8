"""Cap request bodies before they are read: Content-Length first, then while streaming.

Without this a JSON route reads the whole body into memory before any dependency runs,
even an anonymous caller's (a 300 MiB auth request took 263 MiB of RSS before its 413).
The artifact upload is the one exception: it streams to disk under max_artifact_size.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LimitFor = Callable[[str, str], int | None]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit_for: LimitFor) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.limit_for(scope["method"], scope["path"])
        if cap is None:
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _refuse(send, 400, "Content-Length is not a number")
                return
            if int(length) > cap:
                await _refuse(send, 413, f"request body over {cap} bytes")
                return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    # an HTTPException passes FastAPI's body parsing unchanged: 413, not 400
                    raise HTTPException(413, f"request body over {cap} bytes")
            return message

        await self.app(scope, capped, send)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
