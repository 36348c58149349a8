"""Proxies on 127.0.0.1 that record what they carry.

CountingProxy: a TCP proxy counting bytes each way, which can cut or stall a
connection part-way (interrupted downloads). HttpProxy: an HTTP proxy (CONNECT
tunnels and absolute-form requests) recording each request line.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse


class CountingProxy:
    """TCP proxy on 127.0.0.1 that counts bytes each way and can cut a connection.

    `cut_after`: close the first connection whose server->client bytes reach it
    (once). Requests are recorded (the first line and the Range header) to show
    what was asked again after the cut.
    """

    def __init__(
        self, target_port: int, cut_after: int | None = None, hold_after: int | None = None
    ) -> None:
        self.target = target_port
        self.cut_after = cut_after
        self.hold_after = hold_after
        self.holding = threading.Event()
        self._released = threading.Event()
        self.to_client = 0
        self.to_server = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self) -> None:
        self._released.set()

    def reset(self) -> None:
        with self._lock:
            self.to_client = self.to_server = 0
            self.requests.clear()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        sent_back = [0]

        def pump(src: socket.socket, dst: socket.socket, to_client: bool) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if not to_client:
                        self._note_request(data)
                    hold = self.hold_after
                    if to_client and hold is not None and sent_back[0] + len(data) >= hold:
                        self.hold_after = None
                        self.holding.set()  # stall this connection until released
                        self._released.wait()
                        raise ConnectionAbortedError
                    with self._lock:
                        if to_client and self.cut_after is not None:
                            room = self.cut_after - sent_back[0]
                            if len(data) >= room:
                                data = data[:room]
                                self.cut_after = None
                                self.to_client += len(data)
                                dst.sendall(data)
                                raise ConnectionAbortedError
                        if to_client:
                            self.to_client += len(data)
                            sent_back[0] += len(data)
                        else:
                            self.to_server += len(data)
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pump, args=(upstream, client, True), daemon=True).start()
        pump(client, upstream, False)

    def _note_request(self, data: bytes) -> None:
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1", "replace")
        lines = head.split("\r\n")
        if lines and lines[0].split(" ")[0] in ("GET", "POST", "PUT", "PATCH"):
            rng = [ln for ln in lines if ln.lower().startswith("range:")]
            with self._lock:
                self.requests.append(lines[0] + (f" [{rng[0]}]" if rng else ""))

    def close(self) -> None:
        self._stop = True
        self._sock.close()


class HttpProxy:
    """An HTTP proxy on 127.0.0.1: `CONNECT host:port` tunnels (how clients reach an
    https server through a proxy) and absolute-form requests (`GET http://...`, plain
    http through a proxy).

    `requests` holds each request line as received (`CONNECT 127.0.0.1:8443`,
    `POST http://127.0.0.1:8080/api/...`). Only 127.0.0.1 is reached; anything
    else gets 403. Forwarding relays the connection after the first request head,
    so it counts one request per connection: urllib (the agent) sends
    `Connection: close`, which is all these tests need.
    """

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.requests)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(30)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = client.recv(65536)
                if not chunk or len(buf) > 65536:
                    return
                buf += chunk
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            with self._lock:
                self.requests.append(f"{method} {target}")
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                path = None
            else:
                url = urllib.parse.urlsplit(target)
                host, port = url.hostname or "", str(url.port or 80)
                path = url.path or "/"
                if url.query:
                    path += f"?{url.query}"
            if host != "127.0.0.1" or not port.isdigit():
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                upstream = socket.create_connection((host, int(port)), timeout=30)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            with upstream:
                if path is None:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    first = rest
                else:
                    headers = [h for h in lines[1:] if not h.lower().startswith("proxy-")]
                    first = "\r\n".join([f"{method} {path} {version}", *headers]).encode()
                    first += b"\r\n\r\n" + rest
                if first:
                    upstream.sendall(first)
                back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                back.start()
                _pump(client, upstream)
                back.join(30)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> HttpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # either side closing ends the exchange: unblock the other direction too
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
