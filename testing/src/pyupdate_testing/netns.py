"""Several "hosts" on one machine: Linux network namespaces on a bridge (`ip netns`, root).

`hosts_network(n)` makes a bridge in this namespace with the gateway address
`<prefix>.1/24`, and `n` namespaces, each with loopback up and one veth end on the
bridge at `<prefix>.2`, `.3`, .... A process started with `Host.command(argv)` sees
only its own namespace: it reaches the gateway address (services the test runs here,
e.g. PostgreSQL and the object store), and everything here reaches it at its address.
Names carry our pid, and the subnet is picked from it, so runs side by side do not
collide. Everything is removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Host:
    """One namespace: its name and its address on the bridge."""

    name: str
    address: str

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


@dataclass(frozen=True, slots=True)
class Network:
    """The bridge and its hosts.

    Args:
        gateway: this namespace's address on the bridge (where shared services listen).
        cidr: the bridge's subnet, e.g. 10.201.7.0/24.
        hosts: the namespaces, in order.
    """

    gateway: str
    cidr: str
    hosts: tuple[Host, ...]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def unavailable() -> str | None:
    """Why no namespaces can be made here (None if they can)."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if shutil.which("ip") is None:
        return "no `ip` command (apt-get install iproute2)"
    name = f"pyu-probe-{os.getpid()}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        return f"ip netns add failed: {exc.stderr.decode().strip()}"
    _ip("netns", "del", name)
    return None


@contextlib.contextmanager
def hosts_network(count: int) -> Iterator[Network]:
    """A bridge and `count` namespaces on it; all removed on exit."""
    tag = f"{os.getpid() % 100000}"
    prefix = f"10.{200 + os.getpid() % 50}.{os.getpid() // 50 % 256}"
    bridge = f"pyu{tag}br"
    hosts = tuple(Host(f"pyu-{tag}-{i}", f"{prefix}.{i + 2}") for i in range(count))
    made: list[str] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        made.append("bridge")
        _ip("addr", "add", f"{prefix}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i, host in enumerate(hosts):
            outside, inside = f"pyu{tag}v{i}", f"pyu{tag}n{i}"
            _ip("netns", "add", host.name)
            made.append(host.name)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", host.name)
            _ip("link", "set", outside, "master", bridge, "up")
            _ip("-n", host.name, "link", "set", "lo", "up")
            _ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", inside)
            _ip("-n", host.name, "link", "set", inside, "up")
        yield Network(f"{prefix}.1", f"{prefix}.0/24", hosts)
    finally:
        for host in hosts:
            if host.name in made:
                # the veth pair goes with the namespace
                with contextlib.suppress(subprocess.CalledProcessError):
                    _ip("netns", "del", host.name)
        if "bridge" in made:
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("link", "del", bridge)
