"""A throwaway HAProxy (Debian's) in front of several `pyupdate-server serve` hosts.

`haproxy_front(root, backends)` writes `config_text()` (the configuration that
docs/scale-out.md shows) with a free port on 127.0.0.1, runs `haproxy -db` in the
foreground, waits until it accepts, and stops it on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyupdate_testing.server import free_port


def unavailable() -> str | None:
    if shutil.which("haproxy") is None:
        return "no haproxy (apt-get install haproxy)"
    return None


def config_text(bind: str, backends: list[str]) -> str:
    """HAProxy's configuration: `bind` (address:port) in front of `backends` (address:port).

    Each server is checked on /health/ready every second and leaves the rotation after
    two failures; a request whose connection to a dead server fails is sent to another
    one (`retries`, `redispatch`): only a request already sent is lost with the server,
    and devices ask again at their next poll.
    """
    servers = "\n".join(
        f"    server host{i} {b} check inter 1s fall 2 rise 2" for i, b in enumerate(backends)
    )
    return f"""\
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
    option forwardfor

frontend pyupdate
    bind {bind}
    # artifact uploads stream through: no size limit here (the server has max_artifact_size)
    default_backend pyupdate_servers

backend pyupdate_servers
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
{servers}
"""


@dataclass
class HAProxy:
    """A running haproxy: its URL and process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def haproxy_front(root: Path, backends: list[str]) -> Iterator[HAProxy]:
    """haproxy on 127.0.0.1 (a free port) balancing over `backends`; stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "haproxy.cfg"
    config.write_text(config_text(f"127.0.0.1:{port}", backends))
    log = root / "haproxy.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proxy = HAProxy(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield proxy
    finally:
        proxy.stop()
