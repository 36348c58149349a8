"""Verifiers of `manifest.sig`, in Mender's exact encoding.

RSA (2048-4096 bit): PKCS#1 v1.5 over SHA-256. ECDSA: P-256 over SHA-256,
written as raw r||s (64 bytes) by mender-artifact; DER is accepted too, as
newer Mender tools do. Signatures are base64 with padding, no newline.
Public keys: SubjectPublicKeyInfo PEM (a private key's public half is accepted).
The signing half is the build host's (pyupdate_host.sign); the key operations
go through crypto/, which picks `cryptography` or libcrypto.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Protocol

from . import crypto
from .errors import InputError, KeyFileError, SignatureError

_RSA_BITS = range(2048, 4097)


class Verifier(Protocol):
    name: str

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise SignatureError unless `signature` (base64 text) signs `message`."""
        ...


class RSAVerifier:
    def __init__(self, key: crypto.PublicKey, name: str) -> None:
        self._key = key
        self.name = name

    def verify(self, message: bytes, signature: bytes) -> None:
        if not self._key.verify(_b64(signature, self.name), message):
            raise SignatureError(f"manifest.sig does not verify with {self.name}")


class ECDSAVerifier:
    def __init__(self, key: crypto.PublicKey, name: str, backend: crypto.Backend) -> None:
        self._key = key
        self.name = name
        self._backend = backend

    def verify(self, message: bytes, signature: bytes) -> None:
        raw = _b64(signature, self.name)
        # 64 bytes is mender-artifact's raw r||s; anything else may be DER, as
        # PKCS#11-made signatures are (newer Mender tools accept both)
        der = self._backend.ecdsa_der(raw) if len(raw) == 64 else raw
        if not self._key.verify(der, message):
            raise SignatureError(f"manifest.sig does not verify with {self.name}")


def _b64(signature: bytes, name: str) -> bytes:
    try:
        return base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("manifest.sig is not valid base64") from None


def read_key(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read key ({err.strerror})") from None


def check_key(key: crypto.PrivateKey | crypto.PublicKey, path: str | Path, role: str) -> None:
    if key.kind == "rsa" and key.bits not in _RSA_BITS:
        raise KeyFileError(f"{path}: RSA keys of {key.bits} bits are not supported (2048-4096)")
    if key.kind == "ec" and key.curve != "secp256r1":
        raise KeyFileError(f"{path}: ECDSA curve {key.curve} is not supported (only P-256)")
    if key.kind not in ("rsa", "ec"):
        raise KeyFileError(f"{path}: only RSA and ECDSA P-256 keys can {role} artifacts")


def verifier_from_pem(pem: bytes, name: str = "key", *, backend: str | None = None) -> Verifier:
    """A public key; a private key file is accepted too (its public half is used)."""
    chosen = crypto.backend(backend)
    try:
        key = chosen.load_public(pem)
    except crypto.KeyDecodeError:
        try:
            key = chosen.load_private(pem).public_key()
        except crypto.KeyDecodeError:
            raise KeyFileError(f"{name}: not a PEM public key") from None
        except crypto.EncryptedKeyError:
            raise KeyFileError(
                f"{name}: the private key is encrypted (give the public key)"
            ) from None
    check_key(key, name, "verify")
    if key.kind == "rsa":
        return RSAVerifier(key, name)
    return ECDSAVerifier(key, name, chosen)


def load_verifier(path: str | Path, *, backend: str | None = None) -> Verifier:
    return verifier_from_pem(read_key(path), str(path), backend=backend)


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
