"""Signers and verifiers of `manifest.sig`, in Mender's exact encoding.

RSA (2048-4096 bit): PKCS#1 v1.5 over SHA-256. ECDSA: P-256 over SHA-256,
written as raw r||s (64 bytes) like mender-artifact; DER is accepted on read,
as newer Mender tools do. Both are base64 with padding, no newline.
Private keys: PKCS#1, SEC1 or PKCS#8 PEM; public keys: SubjectPublicKeyInfo PEM.
Remote signers (KMS, PKCS#11) would be new implementations of `Signer`.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .errors import InputError, KeyFileError, SignatureError

_RSA_BITS = range(2048, 4097)


class Signer(Protocol):
    def sign(self, message: bytes) -> bytes:
        """Return the base64 signature text to store as manifest.sig."""
        ...


class Verifier(Protocol):
    name: str

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise SignatureError unless `signature` (base64 text) signs `message`."""
        ...


class RSASigner:
    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key

    def sign(self, message: bytes) -> bytes:
        raw = self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        # The key was loaded without its consistency check (_load_private): a broken
        # key shows here, as a signature its own public half refuses (~0.1 ms).
        try:
            self._key.public_key().verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise KeyFileError(
                "the RSA signing key is inconsistent (its signature does not verify)"
            ) from None
        return base64.b64encode(raw)


class ECDSASigner:
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def sign(self, message: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class RSAVerifier:
    def __init__(self, key: rsa.RSAPublicKey, name: str) -> None:
        self._key = key
        self.name = name

    def verify(self, message: bytes, signature: bytes) -> None:
        raw = _b64(signature, self.name)
        try:
            self._key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise SignatureError(f"manifest.sig does not verify with {self.name}") from None


class ECDSAVerifier:
    def __init__(self, key: ec.EllipticCurvePublicKey, name: str) -> None:
        self._key = key
        self.name = name

    def verify(self, message: bytes, signature: bytes) -> None:
        raw = _b64(signature, self.name)
        if len(raw) == 64:
            der = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
        else:
            der = raw  # ASN.1 DER, as PKCS#11-made signatures are
        try:
            self._key.verify(der, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise SignatureError(f"manifest.sig does not verify with {self.name}") from None


def _b64(signature: bytes, name: str) -> bytes:
    try:
        return base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("manifest.sig is not valid base64") from None


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read key ({err.strerror})") from None


def _check_rsa(bits: int, path: str | Path) -> None:
    if bits not in _RSA_BITS:
        raise KeyFileError(f"{path}: RSA keys of {bits} bits are not supported (2048-4096)")


def _check_curve(curve: ec.EllipticCurve, path: str | Path) -> None:
    if not isinstance(curve, ec.SECP256R1):
        raise KeyFileError(f"{path}: ECDSA curve {curve.name} is not supported (only P-256)")


def _load_private(pem: bytes):
    """The PEM private key, without OpenSSL's RSA consistency check.

    That check costs 90 ms for a 3072-bit key, a fifth of writing a 300 MiB
    rootfs artifact; each signature is verified with the public half instead.
    """
    try:
        return serialization.load_pem_private_key(
            pem, password=None, unsafe_skip_rsa_key_validation=True
        )
    except TypeError as err:
        if "unsafe_skip_rsa_key_validation" not in str(err):
            raise
        return serialization.load_pem_private_key(pem, password=None)  # cryptography < 39


def signer_from_pem(pem: bytes, path: str | Path = "key") -> Signer:
    try:
        key = _load_private(pem)
    except TypeError as err:  # cryptography's word for a key that needs a password
        if "encrypted" in str(err):
            raise KeyFileError(
                f"{path}: the private key is encrypted (use an unencrypted PEM key)"
            ) from None
        raise KeyFileError(f"{path}: not a PEM private key (PKCS#1, SEC1 or PKCS#8)") from None
    except ValueError:
        raise KeyFileError(f"{path}: not a PEM private key (PKCS#1, SEC1 or PKCS#8)") from None
    except Exception as err:  # unsupported algorithms raise UnsupportedAlgorithm
        raise KeyFileError(f"{path}: unsupported private key ({err})") from None
    if isinstance(key, rsa.RSAPrivateKey):
        _check_rsa(key.key_size, path)
        return RSASigner(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _check_curve(key.curve, path)
        return ECDSASigner(key)
    raise KeyFileError(f"{path}: only RSA and ECDSA P-256 keys can sign artifacts")


def load_signer(path: str | Path) -> Signer:
    return signer_from_pem(_read(path), path)


def verifier_from_pem(pem: bytes, name: str = "key") -> Verifier:
    """A public key; a private key file is accepted too (its public half is used)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        try:
            key = _load_private(pem).public_key()
        except (ValueError, TypeError):
            raise KeyFileError(f"{name}: not a PEM public key") from None
        except Exception as err:
            raise KeyFileError(f"{name}: unsupported key ({err})") from None
    except Exception as err:
        raise KeyFileError(f"{name}: unsupported key ({err})") from None
    if isinstance(key, rsa.RSAPublicKey):
        _check_rsa(key.key_size, name)
        return RSAVerifier(key, name)
    if isinstance(key, ec.EllipticCurvePublicKey):
        _check_curve(key.curve, name)
        return ECDSAVerifier(key, name)
    raise KeyFileError(f"{name}: only RSA and ECDSA P-256 keys can verify artifacts")


def load_verifier(path: str | Path) -> Verifier:
    return verifier_from_pem(_read(path), str(path))


def verify_any(verifiers: list[Verifier], message: bytes, signature: bytes) -> Verifier:
    """The first verifier that accepts; SignatureError naming all keys otherwise."""
    errors = []
    for verifier in verifiers:
        try:
            verifier.verify(message, signature)
            return verifier
        except SignatureError as err:
            errors.append(err)
    if len(errors) == 1:
        raise errors[0]
    names = ", ".join(v.name for v in verifiers)
    raise SignatureError(f"manifest.sig does not verify with any of {names}")
