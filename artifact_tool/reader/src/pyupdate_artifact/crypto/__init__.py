"""Keys and signatures through one of two backends, chosen here and nowhere else.

`cryptography` when it is importable (build host, server), else libcrypto itself
through ctypes (openssl.py), so that a device needs only Python's standard
library and the OpenSSL 3 that its `ssl` module already links: a Yocto or
Buildroot image then builds no Rust. Both backends offer the same few calls and
give the same bytes; tests run every vector through each of them.

`PYUPDATE_CRYPTO_BACKEND=cryptography|openssl` (or the `name` argument) forces
one; tests use it, and a device may use it to stay off a cryptography that
happens to be installed.
"""

from __future__ import annotations

import functools
import os
from typing import Literal, Protocol

from ..errors import KeyFileError

ENV = "PYUPDATE_CRYPTO_BACKEND"
NAMES = ("cryptography", "openssl")

# "other" is any key type we load but never use (DSA, X25519, RSA-PSS, ...): the
# callers refuse it with their own message, so both backends refuse it alike.
Kind = Literal["rsa", "ec", "ed25519", "other"]
GenerateKind = Literal["rsa", "ec", "ed25519"]


class KeyDecodeError(KeyFileError):
    """The bytes are not a PEM key of the expected kind (private or public)."""


class EncryptedKeyError(KeyFileError):
    """The PEM private key needs a password; we never ask for one."""


class CryptoBackendError(KeyFileError):
    """The backend cannot be loaded, or it failed where it should not have."""


class PublicKey(Protocol):
    kind: Kind
    bits: int
    curve: str | None  # SEC name ("secp256r1") of an EC key, None otherwise

    def verify(self, signature: bytes, message: bytes) -> bool:
        """RSA PKCS#1 v1.5/SHA-256, ECDSA/SHA-256 in DER, Ed25519 pure."""
        ...

    def pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM."""
        ...


class PrivateKey(Protocol):
    kind: Kind
    bits: int
    curve: str | None

    def sign(self, message: bytes) -> bytes:
        """RSA PKCS#1 v1.5/SHA-256, ECDSA/SHA-256 as DER, Ed25519 pure."""
        ...

    def public_key(self) -> PublicKey: ...

    def pem(self) -> bytes:
        """PEM as mender writes its device key: PKCS#1 (RSA), SEC1 (EC), PKCS#8 (Ed25519)."""
        ...


class Backend(Protocol):
    """What openssl.py and pyca.py offer as module-level functions."""

    NAME: str

    def load_private(self, pem: bytes) -> PrivateKey: ...

    def load_public(self, pem: bytes) -> PublicKey: ...

    def generate(self, kind: GenerateKind, bits: int = 3072) -> PrivateKey: ...

    def ecdsa_der(self, raw: bytes) -> bytes:
        """64-byte r||s (P-256) as an ASN.1 DER ECDSA-Sig-Value."""
        ...

    def ecdsa_raw(self, der: bytes) -> bytes:
        """A DER ECDSA-Sig-Value as 64-byte r||s (each left-padded to 32 bytes)."""
        ...


def backend(name: str | None = None) -> Backend:
    """The backend `name`, else the one PYUPDATE_CRYPTO_BACKEND names, else the best one."""
    return _backend(name or os.environ.get(ENV) or "auto")


@functools.cache
def _backend(name: str) -> Backend:
    if name == "auto":
        try:
            from . import pyca
        except ImportError:
            from . import openssl

            return openssl  # type: ignore[return-value]
        return pyca  # type: ignore[return-value]
    if name == "cryptography":
        try:
            from . import pyca
        except ImportError:
            raise CryptoBackendError(
                f"{ENV}=cryptography, but the cryptography package is not installed"
            ) from None
        return pyca  # type: ignore[return-value]
    if name == "openssl":
        from . import openssl

        return openssl  # type: ignore[return-value]
    raise CryptoBackendError(f"{ENV}={name!r} is not one of {', '.join(NAMES)}")
