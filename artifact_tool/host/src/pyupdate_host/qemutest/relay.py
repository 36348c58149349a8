"""One guest connection relayed to a host port: QEMU's guestfwd `cmd:` runs this per connection.

slirp hands the command a non-blocking socket as stdin/stdout; a relay that
does not expect EAGAIN (socat, nc) drops the connection after the first
burst. This one makes the descriptor blocking and copies both ways.
Usage: relay.py PORT (connects to 127.0.0.1:PORT).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import threading

CHUNK = 1 << 16


def _blocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)


def _guest_to_host(upstream: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := os.read(0, CHUNK):
            upstream.sendall(data)
    with contextlib.suppress(OSError):
        upstream.shutdown(socket.SHUT_WR)


def main() -> int:
    _blocking(0)
    _blocking(1)
    upstream = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    threading.Thread(target=_guest_to_host, args=(upstream,), daemon=True).start()
    with contextlib.suppress(OSError):
        while data := upstream.recv(CHUNK):
            view = memoryview(data)
            while view:
                view = view[os.write(1, view) :]
    return 0


if __name__ == "__main__":
    sys.exit(main())
