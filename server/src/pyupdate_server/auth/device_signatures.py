"""Verify a device's auth request signature over the raw body bytes.

Formats as the Mender 3.4 client sends them (docs/device-api.md, "Authentication"):
RSA PKCS#1 v1.5 with SHA-256, ECDSA DER with SHA-256, pure Ed25519.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from pyupdate_server.errors import BadRequest, Unauthorized

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def load_pubkey(pem: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm, TypeError):
        raise BadRequest("pubkey is not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise BadRequest("pubkey must be RSA, ECDSA or Ed25519")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise BadRequest("RSA pubkey must be at least 2048 bits")
    return key


def normalize_pubkey(pem: str) -> str:
    """One spelling per key, so the same key always finds the same auth set."""
    key = load_pubkey(pem)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def verify_signature(key: PublicKey, body: bytes, signature_b64: str | None) -> None:
    if not signature_b64:
        raise Unauthorized("missing X-MEN-Signature header")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("X-MEN-Signature is not base64") from None
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, body, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, body)
    except InvalidSignature:
        raise Unauthorized("signature does not verify with the request's pubkey") from None
