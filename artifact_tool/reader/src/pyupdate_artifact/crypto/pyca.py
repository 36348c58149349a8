"""The `cryptography` backend: for the build host and the server, which have it anyway."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from . import CryptoBackendError, EncryptedKeyError, GenerateKind, KeyDecodeError, Kind

NAME = "cryptography"

_Private = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_Public = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def _describe(key: object) -> tuple[Kind, int, str | None]:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa", key.key_size, None
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519", 256, None  # as OpenSSL counts it
    return "other", 0, None


class PublicKey:
    def __init__(self, key: object) -> None:
        self._key = key
        self.kind, self.bits, self.curve = _describe(key)

    def verify(self, signature: bytes, message: bytes) -> bool:
        key = self._key
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            elif isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
            else:
                return False
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> bytes:
        assert isinstance(self._key, _Public)
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class PrivateKey:
    def __init__(self, key: object) -> None:
        self._key = key
        self.kind, self.bits, self.curve = _describe(key)

    def sign(self, message: bytes) -> bytes:
        key = self._key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(hashes.SHA256()))
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(message)
        raise CryptoBackendError(f"cannot sign with a {self.kind} key")

    def public_key(self) -> PublicKey:
        assert isinstance(self._key, _Private)
        return PublicKey(self._key.public_key())

    def pem(self) -> bytes:
        assert isinstance(self._key, _Private)
        fmt = (
            serialization.PrivateFormat.PKCS8
            if self.kind == "ed25519"
            else serialization.PrivateFormat.TraditionalOpenSSL  # PKCS#1 / SEC1, as mender
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, fmt, serialization.NoEncryption()
        )


def _load_private(pem: bytes) -> object:
    """The PEM private key, without OpenSSL's RSA consistency check.

    That check costs 90 ms for a 3072-bit key, a fifth of writing a 300 MiB
    rootfs artifact; sign.py verifies each signature with the public half instead.
    """
    try:
        return serialization.load_pem_private_key(
            pem, password=None, unsafe_skip_rsa_key_validation=True
        )
    except TypeError as err:
        if "unsafe_skip_rsa_key_validation" not in str(err):
            raise
        return serialization.load_pem_private_key(pem, password=None)  # cryptography < 39


def load_private(pem: bytes) -> PrivateKey:
    try:
        return PrivateKey(_load_private(pem))
    except TypeError as err:  # cryptography's word for a key that needs a password
        if "encrypted" in str(err):
            raise EncryptedKeyError("the private key is encrypted") from None
        raise KeyDecodeError("not a PEM private key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyDecodeError("not a PEM private key") from None


def load_public(pem: bytes) -> PublicKey:
    try:
        return PublicKey(serialization.load_pem_public_key(pem))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyDecodeError("not a PEM public key") from None


def generate(kind: GenerateKind, bits: int = 3072) -> PrivateKey:
    if kind == "rsa":
        return PrivateKey(rsa.generate_private_key(public_exponent=65537, key_size=bits))
    if kind == "ec":
        return PrivateKey(ec.generate_private_key(ec.SECP256R1()))
    if kind == "ed25519":
        return PrivateKey(ed25519.Ed25519PrivateKey.generate())
    raise CryptoBackendError(f"cannot generate a {kind!r} key")


def ecdsa_der(raw: bytes) -> bytes:
    if len(raw) != 64:
        raise CryptoBackendError(f"an r||s signature is 64 bytes, not {len(raw)}")
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def ecdsa_raw(der: bytes) -> bytes:
    try:
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    except (ValueError, OverflowError):
        raise CryptoBackendError("not a DER ECDSA signature of P-256") from None
