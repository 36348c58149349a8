"""Signers and verifiers (sign.py): Mender's exact encoding, key formats, refusals.

Every test runs once per crypto backend (cryptography, libcrypto through ctypes);
the expected bytes come from cryptography itself, so both meet the same vectors.
"""

from __future__ import annotations

import base64
import itertools
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pyupdate_artifact import crypto
from pyupdate_artifact.errors import InputError, KeyFileError, SignatureError
from pyupdate_artifact.verify import load_verifier, verifier_from_pem
from pyupdate_host.sign import load_signer, signer_from_pem

pytestmark = pytest.mark.usefixtures("crypto_backend")

MESSAGE = (
    b"b64e3179b9aa508d2aa57437c1e47ed505a24098bf18be3edf009510073b93d5  data/0000/rootfs.ext4\n"
)


def _private(path: Path):
    return load_pem_private_key(path.read_bytes(), None)


@pytest.mark.parametrize("name", ["rsa2048", "rsa3072", "rsa4096", "rsa3072-pkcs8"])
def test_rsa_signature_is_pkcs1_v15_sha256_base64_without_newline(keys, name: str):
    signature = load_signer(keys[name].private).sign(MESSAGE)
    assert not signature.endswith(b"\n")
    raw = base64.b64decode(signature, validate=True)
    # PKCS#1 v1.5 is deterministic: the same bytes as a direct RSA sign
    expected = _private(keys[name].private).sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    assert raw == expected
    load_verifier(keys[name].public).verify(MESSAGE, signature)


@pytest.mark.parametrize("name", ["ec", "ec-pkcs8"])
def test_ecdsa_signature_is_raw_r_s_of_64_bytes(keys, name: str):
    signature = load_signer(keys[name].private).sign(MESSAGE)
    assert len(signature) == 88
    raw = base64.b64decode(signature)
    assert len(raw) == 64
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    public = _private(keys[name].private).public_key()
    public.verify(encode_dss_signature(r, s), MESSAGE, ec.ECDSA(hashes.SHA256()))


def test_ecdsa_signature_verifies_with_openssl(keys, tmp_path: Path):
    raw = base64.b64decode(load_signer(keys["ec"].private).sign(MESSAGE))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    (tmp_path / "sig.der").write_bytes(der)
    (tmp_path / "manifest").write_bytes(MESSAGE)
    done = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            keys["ec"].public,
            "-signature",
            tmp_path / "sig.der",
            tmp_path / "manifest",
        ],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "Verified OK"


def test_der_ecdsa_signature_is_accepted_on_read(keys):
    der = _private(keys["ec"].private).sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert 68 <= len(der) <= 72
    load_verifier(keys["ec"].public).verify(MESSAGE, base64.b64encode(der))


def test_rsa_pss_signature_is_refused(keys):
    pss = _private(keys["rsa2048"].private).sign(
        MESSAGE,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
        hashes.SHA256(),
    )
    with pytest.raises(SignatureError, match=r"does not verify"):
        load_verifier(keys["rsa2048"].public).verify(MESSAGE, base64.b64encode(pss))


@pytest.mark.parametrize(
    ("signer", "verifier"),
    [("rsa2048", "rsa-other"), ("ec", "ec-other"), ("ec", "rsa2048"), ("rsa2048", "ec")],
)
def test_wrong_key_is_refused(keys, signer: str, verifier: str):
    signature = load_signer(keys[signer].private).sign(MESSAGE)
    with pytest.raises(
        SignatureError, match=f"manifest.sig does not verify with {keys[verifier].public}"
    ):
        load_verifier(keys[verifier].public).verify(MESSAGE, signature)


@pytest.mark.parametrize("bad", [b"", b"!!!notbase64", b"QUJD", b"A" * 87 + b"="])
def test_malformed_signatures_are_refused(keys, bad: bytes):
    for name in ("ec", "rsa2048"):
        with pytest.raises(SignatureError):
            load_verifier(keys[name].public).verify(MESSAGE, bad)


def test_a_flipped_bit_in_message_or_signature_is_refused(keys):
    for name in ("ec", "rsa3072"):
        signature = load_signer(keys[name].private).sign(MESSAGE)
        verifier = load_verifier(keys[name].public)
        with pytest.raises(SignatureError):
            verifier.verify(MESSAGE.replace(b"b64e", b"b64f"), signature)
        raw = bytearray(base64.b64decode(signature))
        raw[10] ^= 1
        with pytest.raises(SignatureError):
            verifier.verify(MESSAGE, base64.b64encode(bytes(raw)))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rsa1024", "RSA keys of 1024 bits are not supported"),
        ("ec384", "curve secp384r1 is not supported"),
        ("ed25519", "only RSA and ECDSA P-256"),
    ],
)
def test_unsupported_keys_are_refused_for_signing_and_verifying(keys, name: str, message: str):
    with pytest.raises(KeyFileError, match=message):
        load_signer(keys[name].private)
    with pytest.raises(KeyFileError, match=message):
        load_verifier(keys[name].public)


def test_a_public_key_cannot_sign_and_garbage_is_not_a_key(keys, tmp_path: Path):
    with pytest.raises(KeyFileError, match=r"not a PEM private key"):
        load_signer(keys["ec"].public)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyFileError):
        load_verifier(garbage)
    with pytest.raises(KeyFileError):
        verifier_from_pem(b"")


def test_a_missing_key_file_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match=r"cannot read key"):
        load_signer(tmp_path / "nope.key")
    with pytest.raises(InputError, match=r"cannot read key"):
        load_verifier(tmp_path / "nope.pub")


def test_a_private_key_file_also_verifies(keys):
    signature = load_signer(keys["ec"].private).sign(MESSAGE)
    load_verifier(keys["ec"].private).verify(MESSAGE, signature)


def test_an_inconsistent_rsa_key_fails_at_signing_not_with_a_bad_signature(keys, tmp_path: Path):
    # Keys load without OpenSSL's slow consistency check; each signature is verified
    # with the key's public half instead, so a broken key never signs an artifact.
    numbers = _private(keys["rsa3072"].private).private_numbers()
    public = rsa.RSAPublicNumbers(65539, numbers.public_numbers.n)  # e that does not fit d
    broken = rsa.RSAPrivateNumbers(
        numbers.p, numbers.q, numbers.d, numbers.dmp1, numbers.dmq1, numbers.iqmp, public
    ).private_key(unsafe_skip_rsa_key_validation=True)
    path = tmp_path / "broken.key"
    path.write_bytes(
        broken.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyFileError, match=r"inconsistent"):
        load_signer(path).sign(MESSAGE)


def test_an_encrypted_private_key_is_named_as_such(keys, tmp_path: Path):
    path = tmp_path / "encrypted.key"
    path.write_bytes(
        _private(keys["rsa3072"].private).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(KeyFileError, match=r"encrypted.key: the private key is encrypted"):
        load_signer(path)


def test_an_encrypted_traditional_key_is_named_as_such(keys, tmp_path: Path):
    path = tmp_path / "encrypted.key"
    path.write_bytes(
        _private(keys["ec"].private).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # Proc-Type: 4,ENCRYPTED
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(KeyFileError, match=r"encrypted.key: the private key is encrypted"):
        load_signer(path)
    with pytest.raises(KeyFileError, match=r"encrypted.key: the private key is encrypted"):
        load_verifier(path)


# --- the two backends ---------------------------------------------------------------
def test_the_forced_backend_is_the_one_used(crypto_backend: str):
    assert crypto_backend == crypto.backend().NAME


def test_an_unknown_backend_is_one_line(keys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(crypto.ENV, "gnutls")
    with pytest.raises(KeyFileError, match=r"^PYUPDATE_CRYPTO_BACKEND='gnutls' is not one of"):
        load_signer(keys["ec"].private)


@pytest.mark.parametrize("name", ["rsa2048", "rsa3072-pkcs8", "rsa4096", "ec", "ec-pkcs8"])
@pytest.mark.parametrize(("signs", "verifies"), list(itertools.product(crypto.NAMES, repeat=2)))
def test_a_signature_made_by_one_backend_verifies_with_the_other(
    keys, name: str, signs: str, verifies: str
):
    signature = load_signer(keys[name].private, backend=signs).sign(MESSAGE)
    load_verifier(keys[name].public, backend=verifies).verify(MESSAGE, signature)
    load_verifier(keys[name].private, backend=verifies).verify(MESSAGE, signature)
    with pytest.raises(SignatureError):
        load_verifier(keys[name].public, backend=verifies).verify(MESSAGE + b"x", signature)


def test_both_backends_convert_ecdsa_signatures_alike(keys):
    # Enough signatures that some r or s has leading zero bytes (1 in 128 each)
    backends = [crypto.backend(name) for name in crypto.NAMES]
    key = _private(keys["ec"].private)
    for i in range(400):
        der = key.sign(MESSAGE + bytes([i % 256, i // 256]), ec.ECDSA(hashes.SHA256()))
        raws = {b.ecdsa_raw(der) for b in backends}
        assert len(raws) == 1
        raw = raws.pop()
        assert len(raw) == 64
        assert {b.ecdsa_der(raw) for b in backends} == {der}


@pytest.mark.parametrize("name", ["ec", "rsa3072"])
def test_a_truncated_signature_is_refused(keys, name: str):
    signature = base64.b64decode(load_signer(keys[name].private).sign(MESSAGE))
    verifier = load_verifier(keys[name].public)
    der = _private(keys["ec"].private).sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    for cut in (signature[:-1], signature[:32], signature[:1], der[:-1], der[:8]):
        with pytest.raises(SignatureError, match=r"^manifest.sig does not verify with "):
            verifier.verify(MESSAGE, base64.b64encode(cut))


@pytest.mark.parametrize(
    "pem",
    [
        b"garbage",
        b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 64 + b"\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN RSA PRIVATE KEY-----\n",
        bytes(range(256)),
    ],
)
def test_garbage_is_one_line_for_signer_and_verifier(pem: bytes):
    with pytest.raises(KeyFileError) as err:
        signer_from_pem(pem, "k.pem")
    assert str(err.value) == "k.pem: not a PEM private key (PKCS#1, SEC1 or PKCS#8)"
    with pytest.raises(KeyFileError) as err:
        verifier_from_pem(pem, "k.pub")
    assert str(err.value) == "k.pub: not a PEM public key"
