"""daemon/identity.py and keytool.py: the device key (0600, reused), its signatures,
identity and inventory scripts (Mender's key=value rules and paths).

The key tests run once per crypto backend (cryptography, libcrypto through ctypes),
checked by cryptography; a device without cryptography is run in a child process.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from pyupdate_agent.daemon.client import DeviceClient
from pyupdate_agent.daemon.identity import (
    MENDER_IDENTITY,
    DeviceKey,
    IdentityError,
    identity_data,
    identity_script,
    inventory,
    parse_key_values,
)
from pyupdate_agent.daemon.keytool import ChildKey

KINDS = {"rsa": rsa.RSAPublicKey, "ecdsa": ec.EllipticCurvePublicKey,
         "ed25519": ed25519.Ed25519PublicKey}  # fmt: skip


def _script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def _verify(public_pem: str, body: bytes, signature: str) -> None:
    """Raises unless `signature` is the Mender X-MEN-Signature of `body`."""
    public = serialization.load_pem_public_key(public_pem.encode())
    raw = base64.b64decode(signature)
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(raw, body, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(raw, body)


# -- the device key ---------------------------------------------------------------------


@pytest.mark.usefixtures("crypto_backend")
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_new_key_is_created_mode_0600_and_reused_on_the_next_start(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "data" / "pyupdate-agent.pem"
    old = os.umask(0o022)
    try:
        first = DeviceKey.load_or_create(path, kind)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name(path.name + ".tmp").exists()
    public = serialization.load_pem_public_key(first.public_pem().encode())
    assert isinstance(public, KINDS[kind])
    if kind == "rsa":
        assert public.key_size == 3072  # mender 3.4's default
    pem = path.read_bytes()
    again = DeviceKey.load_or_create(path, "rsa" if kind != "rsa" else "ed25519")
    assert again.public_pem() == first.public_pem()  # the file wins over DeviceKeyType
    assert path.read_bytes() == pem
    body = b'{"id_data":"{\\"mac\\":\\"02:00\\"}"}\n'
    _verify(first.public_pem(), body, again.sign(body))


@pytest.mark.usefixtures("crypto_backend")
def test_a_stale_tmp_file_with_another_mode_does_not_leak_into_the_key(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    tmp = tmp_path / "key.pem.tmp"
    tmp.write_text("half a key")
    tmp.chmod(0o644)
    DeviceKey.load_or_create(path, "ed25519")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.usefixtures("crypto_backend")
def test_an_unreadable_key_is_an_identity_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(IdentityError, match=rf"^{path}: cannot load the device key"):
        DeviceKey.load_or_create(path, "rsa")


@pytest.mark.usefixtures("crypto_backend")
def test_an_unknown_key_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="DeviceKeyType: 'dsa'"):
        DeviceKey.load_or_create(tmp_path / "key.pem", "dsa")
    assert not (tmp_path / "key.pem").exists()


@pytest.mark.usefixtures("crypto_backend")
def test_the_child_key_signs_like_the_key_in_process(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    child = ChildKey(path, "ecdsa")
    body = b'{"id_data":"x"}\n'
    signature = child.sign(body)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert child.public_pem() == DeviceKey.load_or_create(path, "ecdsa").public_pem()
    _verify(child.public_pem(), body, signature)


@pytest.mark.usefixtures("crypto_backend")
def test_a_child_key_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    child = ChildKey(tmp_path / "file" / "key.pem", "ed25519")
    with pytest.raises(IdentityError) as err:
        child.public_pem()
    assert "\n" not in str(err.value) and str(tmp_path / "file" / "key.pem") in str(err.value)


MENDER_PEM_HEADERS = {
    "rsa": b"-----BEGIN RSA PRIVATE KEY-----\n",  # PKCS#1, as mender 3.4 writes it
    "ecdsa": b"-----BEGIN EC PRIVATE KEY-----\n",  # SEC1
    "ed25519": b"-----BEGIN PRIVATE KEY-----\n",  # PKCS#8
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(
    ("makes", "uses"), [("openssl", "cryptography"), ("cryptography", "openssl")]
)
def test_a_key_made_by_one_backend_serves_the_other(
    tmp_path: Path, kind: str, makes: str, uses: str
) -> None:
    path = tmp_path / "key.pem"
    made = DeviceKey.load_or_create(path, kind, backend=makes)
    assert path.read_bytes().startswith(MENDER_PEM_HEADERS[kind])
    used = DeviceKey.load_or_create(path, kind, backend=uses)
    assert used.public_pem() == made.public_pem()  # SubjectPublicKeyInfo, same text
    body = b'{"id_data":"{}","tenant_token":"","pubkey":"..."}\n'
    _verify(made.public_pem(), body, used.sign(body))
    _verify(made.public_pem(), body, made.sign(body))


@pytest.mark.usefixtures("crypto_backend")
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot load the device key (not a PEM private key)"),
        (bytes(range(256)), "cannot load the device key (not a PEM private key)"),
        ("encrypted", "cannot load the device key (the private key is encrypted)"),
        ("x448", "unsupported device key type"),
    ],
)
def test_a_device_key_that_cannot_serve_is_one_line(
    tmp_path: Path, content: bytes | str, message: str
) -> None:
    from cryptography.hazmat.primitives.asymmetric import x448

    path = tmp_path / "key.pem"
    if content == "encrypted":
        content = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"pw"),
        )
    elif content == "x448":
        content = x448.X448PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    assert isinstance(content, bytes)
    path.write_bytes(content)
    with pytest.raises(IdentityError) as err:
        DeviceKey.load_or_create(path, "rsa")
    assert str(err.value) == f"{path}: {message}"
    child = ChildKey(path, "rsa")
    with pytest.raises(IdentityError) as err:
        child.public_pem()
    assert str(err.value) == f"device key {path}: {path}: {message}"


# A device as Yocto or Buildroot builds it: no cryptography. The agent's imports
# still sign device keys, verify artifact signatures and sign artifacts.
DEVICE_WITHOUT_CRYPTOGRAPHY = """
import base64, json, sys
from pathlib import Path
from pyupdate_agent import install  # noqa: F401  (the agent's path to sign.py)
from pyupdate_agent.daemon.identity import DeviceKey
from pyupdate_agent.daemon.keytool import main as keytool
from pyupdate_artifact import crypto
from pyupdate_artifact.errors import KeyFileError
from pyupdate_artifact.verify import load_verifier
from pyupdate_host.sign import load_signer

folder, message = Path(sys.argv[1]), sys.argv[2].encode()
out = {"backend": crypto.backend().NAME, "keys": {}}
for kind in ("rsa", "ecdsa", "ed25519"):
    key = DeviceKey.load_or_create(folder / f"{kind}.pem", kind)
    out["keys"][kind] = [key.public_pem(), key.sign(message)]
load_verifier(folder / "ec.pub").verify(message, (folder / "ec.sig").read_bytes())
out["artifact_sig"] = load_signer(folder / "ecdsa.pem").sign(message).decode()
try:
    load_signer(folder / "ed25519.pem")
except KeyFileError as err:
    out["refusal"] = str(err)
try:
    crypto.backend("cryptography")
except KeyFileError as err:
    out["forced"] = str(err)
out["cryptography_loaded"] = any(m.split(".")[0] == "cryptography" for m in sys.modules)
json.dump(out, sys.stdout)
"""


def test_the_agent_signs_and_verifies_without_cryptography(
    tmp_path: Path, without_cryptography: dict[str, str]
) -> None:
    message = b"b64e3179b9aa508d2aa57437c1e47ed505a24098bf18be3edf009510073b93d5  version\n"
    signer = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec.pub").write_bytes(
        signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    der = signer.sign(message, ec.ECDSA(hashes.SHA256()))
    (tmp_path / "ec.sig").write_bytes(base64.b64encode(der))  # DER: read as newer Mender does
    probe = subprocess.run(
        [sys.executable, "-c", "import cryptography"], env=without_cryptography, capture_output=True
    )
    assert probe.returncode != 0 and b"blocked by the test" in probe.stderr
    done = subprocess.run(
        [sys.executable, "-c", DEVICE_WITHOUT_CRYPTOGRAPHY, str(tmp_path), message.decode()],
        env=without_cryptography,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["backend"] == "openssl" and out["cryptography_loaded"] is False
    for kind, (public_pem, signature) in out["keys"].items():
        assert (tmp_path / f"{kind}.pem").read_bytes().startswith(MENDER_PEM_HEADERS[kind])
        _verify(public_pem, message, signature)
    ecdsa = serialization.load_pem_private_key((tmp_path / "ecdsa.pem").read_bytes(), None)
    raw = base64.b64decode(out["artifact_sig"])
    assert len(raw) == 64  # raw r||s, as mender-artifact writes
    ecdsa.public_key().verify(  # type: ignore[union-attr]
        encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
        message,
        ec.ECDSA(hashes.SHA256()),
    )
    assert out["refusal"].endswith("only RSA and ECDSA P-256 keys can sign artifacts")
    assert out["forced"] == (
        "PYUPDATE_CRYPTO_BACKEND=cryptography, but the cryptography package is not installed"
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from pyupdate_testing.server import live_server

    with live_server(tmp_path_factory.mktemp("identity-server")) as server:
        yield server


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_our_server_accepts_a_key_made_on_a_device_without_cryptography(
    live, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch,
    without_cryptography: dict[str, str],
) -> None:  # fmt: skip
    # keytool's child is what the daemon runs: give it the device's environment
    monkeypatch.setenv("PYTHONPATH", without_cryptography["PYTHONPATH"])
    monkeypatch.delenv("PYUPDATE_CRYPTO_BACKEND", raising=False)
    key = ChildKey(tmp_path / "pyupdate-agent.pem", kind)
    identity = {"mac": f"02:00:00:00:13:{sorted(KINDS).index(kind):02x}"}
    pubkey = key.public_pem()
    assert (tmp_path / "pyupdate-agent.pem").read_bytes().startswith(MENDER_PEM_HEADERS[kind])
    live.preauthorize(identity, pubkey)
    client = DeviceClient(live.url, timeout=30)
    token = client.authenticate(json.dumps(identity, separators=(",", ":")), key)
    assert token.count(".") == 2


# -- key=value -------------------------------------------------------------------------


def test_repeated_keys_become_a_list_in_order(caplog: pytest.LogCaptureFixture) -> None:
    text = "mac=02:00\n# a comment\n\nip=10.0.0.1\nip=10.0.0.2\nip=10.0.0.3\nno equals\nk=a=b\n"
    with caplog.at_level(logging.WARNING, logger="pyupdate_agent"):
        parsed = parse_key_values(text, "script")
    assert parsed == {"mac": "02:00", "ip": ["10.0.0.1", "10.0.0.2", "10.0.0.3"], "k": "a=b"}
    assert [r.getMessage() for r in caplog.records] == ["ignoring line without '=' from script"]


def test_identity_data_is_compact_json_with_sorted_keys(tmp_path: Path) -> None:
    script = _script(tmp_path / "id", "echo serial=42\necho mac=02:00\necho mac=02:01")
    data = identity_data(script)
    assert data == '{"mac":["02:00","02:01"],"serial":"42"}'
    assert json.loads(data) == {"mac": ["02:00", "02:01"], "serial": "42"}


@pytest.mark.parametrize(
    ("body", "message"),
    [("echo", "printed no key=value identity"), ("echo mac=1; exit 3", "exited with 3")],
)
def test_a_useless_identity_script_is_an_error(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        identity_data(_script(tmp_path / "id", body))


# -- discovery -------------------------------------------------------------------------


def test_identity_script_is_the_first_executable_of_the_first_dir_that_has_one(
    tmp_path: Path,
) -> None:
    empty, first, second = tmp_path / "empty", tmp_path / "first", tmp_path / "second"
    empty.mkdir()
    _script(first / "a-not-executable", "echo x=1", mode=0o644)
    _script(first / "z-id", "echo x=1")
    _script(first / "m-id", "echo x=1")
    _script(second / "a-id", "echo x=1")
    mender = _script(tmp_path / "mender-device-identity", "echo mac=1")
    dirs = [str(tmp_path / "missing"), str(empty), str(first), str(second)]
    assert identity_script(dirs, str(mender)) == first / "m-id"
    assert identity_script([str(second), str(first)], str(mender)) == second / "a-id"


def test_identity_falls_back_to_menders_script(tmp_path: Path) -> None:
    mender = _script(tmp_path / "mender" / "identity" / "mender-device-identity", "echo mac=1")
    assert identity_script([str(tmp_path / "none")], str(mender)) == mender
    assert MENDER_IDENTITY == "/usr/share/mender/identity/mender-device-identity"


def test_no_identity_script_anywhere_is_an_error_naming_the_places(tmp_path: Path) -> None:
    mender = _script(tmp_path / "mender-device-identity", "echo mac=1", mode=0o644)
    with pytest.raises(IdentityError, match=rf"no identity script in {tmp_path}/none nor"):
        identity_script([str(tmp_path / "none")], str(mender))


# -- inventory -------------------------------------------------------------------------


def test_inventory_merges_every_script_then_the_fixed_attributes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ours = tmp_path / "pyupdate" / "inventory"
    mender = tmp_path / "mender" / "inventory"
    _script(ours / "hostinfo", "echo hostname=dev-1\necho device_type=spoofed")
    _script(ours / "network", "echo ipv4=10.0.0.1/8\necho ipv4=10.0.0.2/8")
    _script(ours / "broken", "echo half=1; exit 2")
    _script(ours / "not-executable", "echo never=1", mode=0o644)
    _script(mender / "mender-inventory-os", "echo os=Debian")
    _script(mender / "other-helper", "echo never=2")  # no mender-inventory- prefix
    with caplog.at_level(logging.WARNING, logger="pyupdate_agent"):
        attributes = inventory([str(ours), str(mender)], {"device_type": "test-device"})
    got = {a["name"]: a["value"] for a in attributes}
    assert got == {
        "hostname": "dev-1",
        "ipv4": ["10.0.0.1/8", "10.0.0.2/8"],
        "os": "Debian",
        "device_type": "test-device",  # the agent's own attributes win
    }
    assert len(attributes) == len(got)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "broken: exited with 2" in warnings[0], warnings
    assert "inventory script failed" in warnings[0]


def test_inventory_without_scripts_is_the_fixed_attributes(tmp_path: Path) -> None:
    fixed = {"device_type": "d", "artifact_name": "a"}
    assert inventory([str(tmp_path / "none")], fixed) == [
        {"name": "device_type", "value": "d"},
        {"name": "artifact_name", "value": "a"},
    ]
