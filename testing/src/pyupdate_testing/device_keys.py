"""Device keys and auth-request signatures as the Mender 3.4 client makes them."""

from __future__ import annotations

import base64
from functools import cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

DeviceKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@cache
def device_key(kind: str = "rsa", n: int = 0) -> DeviceKey:
    """A key of `kind` ("rsa", "ec" or "ed25519"), the same one for the same (kind, n)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def sign(key: DeviceKey, body: bytes) -> str:
    """The X-MEN-Signature of `body`: base64 of RSA PKCS#1 v1.5, ECDSA or Ed25519 over it."""
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(body, ec.ECDSA(hashes.SHA256()))
    else:
        sig = key.sign(body)
    return base64.b64encode(sig).decode()


def pubkey_pem(key: DeviceKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
