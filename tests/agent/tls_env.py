"""TLS and proxies for the server and daemon tests: a private CA with a server
certificate for 127.0.0.1 and localhost, `pyupdate-server serve --tls-cert --tls-key`
on 127.0.0.1, and an HTTP proxy (CONNECT tunnels and absolute-form forwarding)
that records every request it carries.

Builds on daemon_env: the server is a daemon_env.Server, so its management API
shortcuts work unchanged. Imported by tests/agent/test_daemon_tls.py and
tests/server/test_serve_tls.py; no conftest imports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import re
import socket
import ssl
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from daemon_env import ADMIN, Server, _server_cmd, free_port, wait_healthy


@dataclass(frozen=True, slots=True)
class Pki:
    """Args:
    ca: the CA certificate (PEM), what a client must trust.
    cert, key: the server's certificate (SAN 127.0.0.1 and localhost) and key (PEM).
    """

    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """Verification on, trusting only this CA."""
        return ssl.create_default_context(cafile=str(self.ca))


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path) -> Pki:
    """A CA and a server certificate it signed (P-256: quick to make)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("pyupdate test CA"))
        .issuer_name(_name("pyupdate test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(_pem_key(key))
    pki.key.chmod(0o600)
    return pki


@contextlib.contextmanager
def tls_server(root: Path, pki: Pki) -> Iterator[Server]:
    """`pyupdate-server serve --tls-cert --tls-key` on 127.0.0.1 with an admin user.

    The yielded Server's `api` client trusts `pki.ca`; everything else is
    daemon_env.Server (stop, preauthorize, inventory, ...).
    """
    data = root / "server-data"
    subprocess.run(
        [*_server_cmd(), "user", "create", "--data-dir", str(data), "--username", ADMIN[0],
         "--password", ADMIN[1]],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = free_port()
    log = root / "server.log"
    cmd = [*_server_cmd(), "serve", "--data-dir", str(data), "--port", str(port),
           "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"https://127.0.0.1:{port}"
    server = Server(url, port, data, log, proc)
    try:
        wait_healthy(url, proc, log, pki.client_context())
        context = pki.client_context()
        r = httpx.post(f"{url}/api/management/v1/useradm/auth/login", auth=ADMIN, verify=context)
        r.raise_for_status()
        server._api = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {r.text}"}, timeout=60, verify=context
        )
        yield server
    finally:
        if server._api is not None:
            server._api.close()
        server.stop()


def metric(server: Server, name: str, **labels: str) -> int:
    """Sum of a Prometheus counter over the series whose labels include `labels`."""
    text = server.api.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}_total\{{(.*)\}} (\S+)$", line)
        if match is None:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return int(total)


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
