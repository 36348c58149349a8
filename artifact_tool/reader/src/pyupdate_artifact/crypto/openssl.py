"""The libcrypto backend: OpenSSL 3's EVP interfaces through ctypes, for devices.

No cryptography is done here: keys are decoded, generated, encoded, and used
to sign and verify by libcrypto; this module only moves bytes in and out.
It needs OpenSSL 3 (the EVP_PKEY_get_* names and provider key generation).

`import ssl` comes first so that the libcrypto Python itself links is the one
dlopen() returns: a device has no ldconfig cache or compiler for
ctypes.util.find_library to use, and two OpenSSL copies in one process are a
hazard we can avoid. Every object is freed when its Python owner goes, so a
daemon that signs once per token lifetime for months does not grow.
"""

from __future__ import annotations

import ctypes
import ssl  # noqa: F401  (loads the libcrypto that _ssl links, see above)
import weakref
from ctypes import (
    CFUNCTYPE,
    POINTER,
    byref,
    c_char_p,
    c_int,
    c_long,
    c_size_t,
    c_ubyte,
    c_ulong,
    c_void_p,
)

from . import CryptoBackendError, EncryptedKeyError, GenerateKind, KeyDecodeError, Kind

NAME = "openssl"
SONAMES = ("libcrypto.so.3", "libcrypto.so")

# openssl/evp.h (these are NIDs, stable across OpenSSL versions)
_EVP_PKEY_RSA = 6
_EVP_PKEY_EC = 408
_EVP_PKEY_ED25519 = 1087
_BIO_CTRL_INFO = 3  # BIO_get_mem_data is a macro over BIO_ctrl
_MAX_PEM = 1 << 20  # an RSA 4096 PEM is ~3.3 KiB; a key file is never near this
# OpenSSL names P-256 by its X9.62 name; the callers (and cryptography) use SEC names.
_SEC_NAMES = {"prime256v1": "secp256r1", "prime192v1": "secp192r1"}

_PASSWORD_CB = CFUNCTYPE(c_int, c_void_p, c_int, c_int, c_void_p)
_UBYTE_P = POINTER(c_ubyte)

# name -> (restype, argtypes); every function used is declared here and only here.
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "OpenSSL_version_num": (c_ulong, []),
    "ERR_get_error": (c_ulong, []),
    "ERR_error_string_n": (None, [c_ulong, c_char_p, c_size_t]),
    "ERR_clear_error": (None, []),
    "BIO_new_mem_buf": (c_void_p, [c_char_p, c_int]),
    "BIO_s_mem": (c_void_p, []),
    "BIO_new": (c_void_p, [c_void_p]),
    "BIO_ctrl": (c_long, [c_void_p, c_int, c_long, c_void_p]),
    "BIO_free": (c_int, [c_void_p]),
    "PEM_read_bio_PrivateKey": (c_void_p, [c_void_p, c_void_p, _PASSWORD_CB, c_void_p]),
    "PEM_read_bio_PUBKEY": (c_void_p, [c_void_p, c_void_p, _PASSWORD_CB, c_void_p]),
    "PEM_write_bio_PrivateKey": (
        c_int,
        [c_void_p, c_void_p, c_void_p, c_char_p, c_int, c_void_p, c_void_p],
    ),
    "PEM_write_bio_PrivateKey_traditional": (
        c_int,
        [c_void_p, c_void_p, c_void_p, c_char_p, c_int, c_void_p, c_void_p],
    ),
    "PEM_write_bio_PUBKEY": (c_int, [c_void_p, c_void_p]),
    "EVP_PKEY_free": (None, [c_void_p]),
    "EVP_PKEY_get_base_id": (c_int, [c_void_p]),
    "EVP_PKEY_get_bits": (c_int, [c_void_p]),
    "EVP_PKEY_get_group_name": (c_int, [c_void_p, c_char_p, c_size_t, POINTER(c_size_t)]),
    "i2d_PUBKEY_bio": (c_int, [c_void_p, c_void_p]),
    "d2i_PUBKEY_bio": (c_void_p, [c_void_p, c_void_p]),
    "EVP_sha256": (c_void_p, []),
    "EVP_MD_CTX_new": (c_void_p, []),
    "EVP_MD_CTX_free": (None, [c_void_p]),
    "EVP_DigestSignInit": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p]),
    "EVP_DigestSign": (c_int, [c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t]),
    "EVP_DigestVerifyInit": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p]),
    "EVP_DigestVerify": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t]),
    "EVP_PKEY_CTX_new_from_name": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "EVP_PKEY_CTX_free": (None, [c_void_p]),
    "EVP_PKEY_keygen_init": (c_int, [c_void_p]),
    "EVP_PKEY_CTX_set_rsa_keygen_bits": (c_int, [c_void_p, c_int]),
    "EVP_PKEY_CTX_set_group_name": (c_int, [c_void_p, c_char_p]),
    "EVP_PKEY_generate": (c_int, [c_void_p, POINTER(c_void_p)]),
    "ECDSA_SIG_new": (c_void_p, []),
    "ECDSA_SIG_free": (None, [c_void_p]),
    "ECDSA_SIG_set0": (c_int, [c_void_p, c_void_p, c_void_p]),
    "ECDSA_SIG_get0_r": (c_void_p, [c_void_p]),
    "ECDSA_SIG_get0_s": (c_void_p, [c_void_p]),
    "d2i_ECDSA_SIG": (c_void_p, [c_void_p, POINTER(_UBYTE_P), c_long]),
    "i2d_ECDSA_SIG": (c_int, [c_void_p, POINTER(_UBYTE_P)]),
    "BN_bin2bn": (c_void_p, [c_char_p, c_int, c_void_p]),
    "BN_bn2binpad": (c_int, [c_void_p, c_char_p, c_int]),
    "BN_free": (None, [c_void_p]),
}


def _load() -> ctypes.CDLL:
    tried = []
    for soname in SONAMES:
        try:
            lib = ctypes.CDLL(soname)
        except OSError:
            tried.append(soname)
            continue
        try:
            for name, (restype, argtypes) in _SIGNATURES.items():
                func = getattr(lib, name)
                func.restype = restype
                func.argtypes = argtypes
        except AttributeError as err:
            raise CryptoBackendError(
                f"{soname} is not OpenSSL 3 (missing {err.name or err}); install libcrypto 3"
            ) from None
        if lib.OpenSSL_version_num() < 0x30000000:
            raise CryptoBackendError(f"{soname} is older than OpenSSL 3; install libcrypto 3")
        return lib
    raise CryptoBackendError(f"cannot load libcrypto ({', '.join(tried)}); install OpenSSL 3")


_lib = _load()


def _errors() -> str:
    """Drain OpenSSL's thread-local error queue into one line (the queue must not carry
    a stale error into the next, unrelated call)."""
    reasons = []
    buf = ctypes.create_string_buffer(256)
    while code := _lib.ERR_get_error():
        _lib.ERR_error_string_n(code, buf, len(buf))
        reasons.append(buf.value.decode("ascii", "replace"))
    return "; ".join(reasons) or "no reason given"


def _fail(what: str) -> CryptoBackendError:
    return CryptoBackendError(f"libcrypto: {what} failed ({_errors()})")


class _Bio:
    """A memory BIO, freed on leaving the `with` block."""

    def __init__(self, data: bytes | None = None) -> None:
        if data is None:
            self.ptr = _lib.BIO_new(_lib.BIO_s_mem())
        elif len(data) > _MAX_PEM:
            raise KeyDecodeError(f"a PEM key larger than {_MAX_PEM // 1024} KiB")
        else:
            self._data = data  # BIO_new_mem_buf does not copy: keep the bytes alive
            self.ptr = _lib.BIO_new_mem_buf(data, len(data))
        if not self.ptr:
            raise _fail("BIO_new")

    def __enter__(self) -> _Bio:
        return self

    def __exit__(self, *exc: object) -> None:
        _lib.BIO_free(self.ptr)

    def read_all(self) -> bytes:
        data = c_void_p()
        size = _lib.BIO_ctrl(self.ptr, _BIO_CTRL_INFO, 0, byref(data))
        return ctypes.string_at(data.value, size) if size > 0 and data.value else b""


class _Key:
    """An EVP_PKEY* that this object owns."""

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr
        weakref.finalize(self, _lib.EVP_PKEY_free, ptr)
        base = _lib.EVP_PKEY_get_base_id(ptr)
        self.kind: Kind = {
            _EVP_PKEY_RSA: "rsa",
            _EVP_PKEY_EC: "ec",
            _EVP_PKEY_ED25519: "ed25519",
        }.get(base, "other")  # type: ignore[assignment]
        self.bits: int = _lib.EVP_PKEY_get_bits(ptr)
        self.curve: str | None = self._group() if self.kind == "ec" else None

    def _group(self) -> str:
        buf = ctypes.create_string_buffer(80)
        length = c_size_t()
        if _lib.EVP_PKEY_get_group_name(self._ptr, buf, len(buf), byref(length)) != 1:
            _lib.ERR_clear_error()
            return "unknown"  # explicit curve parameters: no name, never P-256 for us
        name = buf.value.decode("ascii", "replace")
        return _SEC_NAMES.get(name, name)

    def _digest(self) -> int | None:
        # Ed25519 hashes inside the algorithm: EVP wants no digest for it
        return None if self.kind == "ed25519" else _lib.EVP_sha256()


class PublicKey(_Key):
    def verify(self, signature: bytes, message: bytes) -> bool:
        ctx = _lib.EVP_MD_CTX_new()
        if not ctx:
            raise _fail("EVP_MD_CTX_new")
        try:
            if _lib.EVP_DigestVerifyInit(ctx, None, self._digest(), None, self._ptr) != 1:
                raise _fail("EVP_DigestVerifyInit")
            done = _lib.EVP_DigestVerify(ctx, signature, len(signature), message, len(message))
        finally:
            _lib.EVP_MD_CTX_free(ctx)
        # 0 is a bad signature and < 0 a malformed one: both leave reasons on the queue
        _lib.ERR_clear_error()
        return done == 1

    def pem(self) -> bytes:
        with _Bio() as bio:
            if _lib.PEM_write_bio_PUBKEY(bio.ptr, self._ptr) != 1:
                raise _fail("PEM_write_bio_PUBKEY")
            return bio.read_all()


class PrivateKey(_Key):
    def sign(self, message: bytes) -> bytes:
        ctx = _lib.EVP_MD_CTX_new()
        if not ctx:
            raise _fail("EVP_MD_CTX_new")
        try:
            if _lib.EVP_DigestSignInit(ctx, None, self._digest(), None, self._ptr) != 1:
                raise _fail("EVP_DigestSignInit")
            size = c_size_t()
            if _lib.EVP_DigestSign(ctx, None, byref(size), message, len(message)) != 1:
                raise _fail("EVP_DigestSign")
            out = ctypes.create_string_buffer(size.value)
            if _lib.EVP_DigestSign(ctx, out, byref(size), message, len(message)) != 1:
                raise _fail("EVP_DigestSign")
            return out.raw[: size.value]
        finally:
            _lib.EVP_MD_CTX_free(ctx)

    def public_key(self) -> PublicKey:
        # Through DER, so the public object owns a key of its own (no shared refcount)
        with _Bio() as bio:
            if _lib.i2d_PUBKEY_bio(bio.ptr, self._ptr) != 1:
                raise _fail("i2d_PUBKEY_bio")
            ptr = _lib.d2i_PUBKEY_bio(bio.ptr, None)
        if not ptr:
            raise _fail("d2i_PUBKEY_bio")
        return PublicKey(ptr)

    def pem(self) -> bytes:
        write = (
            _lib.PEM_write_bio_PrivateKey  # PKCS#8: Ed25519 has no traditional form
            if self.kind == "ed25519"
            else _lib.PEM_write_bio_PrivateKey_traditional  # PKCS#1 / SEC1, as mender
        )
        with _Bio() as bio:
            if write(bio.ptr, self._ptr, None, None, 0, None, None) != 1:
                raise _fail("PEM_write_bio_PrivateKey")
            return bio.read_all()


def _no_password(asked: list[bool]) -> ctypes._CFuncPtr:
    """A password callback that never prompts (OpenSSL's default one reads the
    terminal, which a daemon has not) and notes in `asked` that one was wanted."""

    def callback(buf: int, size: int, rwflag: int, userdata: int) -> int:
        asked.append(True)
        return -1

    return _PASSWORD_CB(callback)


def load_private(pem: bytes) -> PrivateKey:
    asked: list[bool] = []
    callback = _no_password(asked)  # referenced until the call returns
    with _Bio(pem) as bio:
        ptr = _lib.PEM_read_bio_PrivateKey(bio.ptr, None, callback, None)
    if not ptr:
        _errors()
        if asked:
            raise EncryptedKeyError("the private key is encrypted")
        raise KeyDecodeError("not a PEM private key")
    return PrivateKey(ptr)


def load_public(pem: bytes) -> PublicKey:
    callback = _no_password([])
    with _Bio(pem) as bio:
        ptr = _lib.PEM_read_bio_PUBKEY(bio.ptr, None, callback, None)
    if not ptr:
        _errors()
        raise KeyDecodeError("not a PEM public key")
    return PublicKey(ptr)


def generate(kind: GenerateKind, bits: int = 3072) -> PrivateKey:
    names = {"rsa": b"RSA", "ec": b"EC", "ed25519": b"ED25519"}
    if kind not in names:
        raise CryptoBackendError(f"cannot generate a {kind!r} key")
    ctx = _lib.EVP_PKEY_CTX_new_from_name(None, names[kind], None)
    if not ctx:
        raise _fail(f"EVP_PKEY_CTX_new_from_name({kind})")
    try:
        if _lib.EVP_PKEY_keygen_init(ctx) != 1:
            raise _fail("EVP_PKEY_keygen_init")
        if kind == "rsa" and _lib.EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) != 1:
            raise _fail("EVP_PKEY_CTX_set_rsa_keygen_bits")
        if kind == "ec" and _lib.EVP_PKEY_CTX_set_group_name(ctx, b"P-256") != 1:
            raise _fail("EVP_PKEY_CTX_set_group_name")
        out = c_void_p()
        if _lib.EVP_PKEY_generate(ctx, byref(out)) != 1 or not out.value:
            raise _fail("EVP_PKEY_generate")
    finally:
        _lib.EVP_PKEY_CTX_free(ctx)
    return PrivateKey(out.value)


def ecdsa_der(raw: bytes) -> bytes:
    if len(raw) != 64:
        raise CryptoBackendError(f"an r||s signature is 64 bytes, not {len(raw)}")
    sig = _lib.ECDSA_SIG_new()
    if not sig:
        raise _fail("ECDSA_SIG_new")
    try:
        r = _lib.BN_bin2bn(raw[:32], 32, None)
        s = _lib.BN_bin2bn(raw[32:], 32, None)
        # set0 takes r and s on success only
        if not r or not s or _lib.ECDSA_SIG_set0(sig, r, s) != 1:
            _lib.BN_free(r)
            _lib.BN_free(s)
            raise _fail("ECDSA_SIG_set0")
        size = _lib.i2d_ECDSA_SIG(sig, None)
        if size <= 0:
            raise _fail("i2d_ECDSA_SIG")
        out = (c_ubyte * size)()
        cursor = ctypes.cast(out, _UBYTE_P)  # i2d moves the cursor, not `out`
        if _lib.i2d_ECDSA_SIG(sig, byref(cursor)) != size:
            raise _fail("i2d_ECDSA_SIG")
        return bytes(out)
    finally:
        _lib.ECDSA_SIG_free(sig)


def ecdsa_raw(der: bytes) -> bytes:
    data = (c_ubyte * len(der)).from_buffer_copy(der)
    cursor = ctypes.cast(data, _UBYTE_P)
    sig = _lib.d2i_ECDSA_SIG(None, byref(cursor), len(der))
    if not sig:
        _errors()
        raise CryptoBackendError("not a DER ECDSA signature")
    try:
        out = ctypes.create_string_buffer(64)
        for half, bn in ((0, _lib.ECDSA_SIG_get0_r(sig)), (32, _lib.ECDSA_SIG_get0_s(sig))):
            part = ctypes.create_string_buffer(32)
            if _lib.BN_bn2binpad(bn, part, 32) != 32:
                _errors()
                raise CryptoBackendError("not a DER ECDSA signature of P-256")
            out[half : half + 32] = part.raw
        return out.raw
    finally:
        _lib.ECDSA_SIG_free(sig)
