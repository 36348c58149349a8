"""Signers of `manifest.sig`, in Mender's exact encoding (the build host's half).

RSA (2048-4096 bit): PKCS#1 v1.5 over SHA-256. ECDSA: P-256 over SHA-256,
written as raw r||s (64 bytes) like mender-artifact. Both are base64 with
padding, no newline. Private keys: PKCS#1, SEC1 or PKCS#8 PEM.
Remote signers (KMS, PKCS#11) would be new implementations of `Signer`.
Verifying is the reader's (pyupdate_artifact.verify), with the same key checks.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Protocol

from pyupdate_artifact import crypto
from pyupdate_artifact.errors import KeyFileError
from pyupdate_artifact.verify import check_key, read_key


class Signer(Protocol):
    def sign(self, message: bytes) -> bytes:
        """Return the base64 signature text to store as manifest.sig."""
        ...


class RSASigner:
    def __init__(self, key: crypto.PrivateKey) -> None:
        self._key = key

    def sign(self, message: bytes) -> bytes:
        raw = self._key.sign(message)
        # Keys load without their consistency check (90 ms for RSA 3072, a fifth of
        # writing a 300 MiB rootfs artifact): a broken key shows here, as a signature
        # its own public half refuses (~0.1 ms).
        if not self._key.public_key().verify(raw, message):
            raise KeyFileError(
                "the RSA signing key is inconsistent (its signature does not verify)"
            )
        return base64.b64encode(raw)


class ECDSASigner:
    def __init__(self, key: crypto.PrivateKey, backend: crypto.Backend) -> None:
        self._key = key
        self._backend = backend

    def sign(self, message: bytes) -> bytes:
        return base64.b64encode(self._backend.ecdsa_raw(self._key.sign(message)))


def signer_from_pem(pem: bytes, path: str | Path = "key", *, backend: str | None = None) -> Signer:
    """`backend` forces one crypto backend (crypto.NAMES); by default crypto.backend() picks."""
    chosen = crypto.backend(backend)
    try:
        key = chosen.load_private(pem)
    except crypto.EncryptedKeyError:
        raise KeyFileError(
            f"{path}: the private key is encrypted (use an unencrypted PEM key)"
        ) from None
    except crypto.KeyDecodeError:
        raise KeyFileError(f"{path}: not a PEM private key (PKCS#1, SEC1 or PKCS#8)") from None
    check_key(key, path, "sign")
    return RSASigner(key) if key.kind == "rsa" else ECDSASigner(key, chosen)


def load_signer(path: str | Path, *, backend: str | None = None) -> Signer:
    return signer_from_pem(read_key(path), path, backend=backend)
