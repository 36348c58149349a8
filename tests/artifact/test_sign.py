"""Signers and verifiers (sign.py): Mender's exact encoding, key formats, refusals."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pyupdate_artifact.errors import InputError, KeyFileError, SignatureError
from pyupdate_artifact.sign import load_signer, load_verifier, verifier_from_pem

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
