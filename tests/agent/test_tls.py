"""tls.py: the one TLS context, for the daemon's device API and `pyupdate install https://...`
(docs/agent.md, "Network behaviour")."""

from __future__ import annotations

import contextlib
import functools
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_agent.errors import ConfigError
from pyupdate_agent.tls import tls_context
from pyupdate_testing.host_device import PART_B
from pyupdate_testing.pki import Pki, make_pki


@contextlib.contextmanager
def https_files(directory: Path, pki: Pki) -> Iterator[str]:
    """`directory` over HTTPS on 127.0.0.1 with `pki`'s server certificate."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_server_certificate_is_added_to_the_system_cas(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    system = len(tls_context(None, False).get_ca_certs())
    context = tls_context(str(pki.ca), False)
    names = [dict(x[0] for x in ca["subject"]).get("commonName") for ca in context.get_ca_certs()]
    assert "pyupdate test CA" in names and len(names) == system + 1
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_server_certificate_that_cannot_load_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ServerCertificate .*missing\.pem: cannot load"):
        tls_context(str(tmp_path / "missing.pem"), False)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"^ServerCertificate .*junk\.pem: cannot load"):
        tls_context(str(junk), False)


def test_skip_verify_turns_verification_off() -> None:
    context = tls_context(None, True)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


@pytest.mark.uboot
def test_https_install_trusts_server_certificate(host, rootfs_artifact, tmp_path, capsys):
    pki = make_pki(tmp_path / "pki")
    art = rootfs_artifact("release-1")
    with https_files(art.parent, pki) as url:
        assert host.cli("install", f"{url}/{art.name}") == 5  # not trusted: refused at once
        assert "certificate verify failed" in capsys.readouterr().err
        host.write_config(ServerCertificate=str(pki.ca))
        assert host.cli("install", f"{url}/{art.name}") == 0
    assert host.env()["mender_boot_part"] == str(PART_B)


@pytest.mark.uboot
def test_https_install_with_an_unloadable_server_certificate_exits_3(
    host, rootfs_artifact, tmp_path, capsys
):
    host.write_config(ServerCertificate=str(tmp_path / "missing.pem"))
    assert host.cli("install", "https://127.0.0.1:1/x.mender") == 3
    assert "ServerCertificate" in capsys.readouterr().err
