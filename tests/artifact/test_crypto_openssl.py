"""crypto/openssl.py: libcrypto through ctypes, as a device without cryptography uses it.

What both backends share (vectors, encodings, refusals) is tested through sign.py
and identity.py on each backend; here is what only the ctypes layer can get wrong:
which libcrypto it loads, the error queue, and freeing what it allocates.
"""

from __future__ import annotations

import ctypes
import gc
import os
import re

import pytest

from pyupdate_artifact.crypto import KeyDecodeError, openssl


def _rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_the_loaded_libcrypto_is_the_one_ssl_links() -> None:
    with open("/proc/self/maps") as f:
        mapped = set(re.findall(r"\S*/libcrypto\.so[.\d]*", f.read()))
    assert len(mapped) == 1, mapped  # one OpenSSL in the process, not two
    assert openssl._lib.OpenSSL_version_num() >= 0x30000000


def test_a_failure_leaves_no_error_on_openssls_queue() -> None:
    # A stale error would surface in the next, unrelated call (ours or the ssl module's)
    with pytest.raises(KeyDecodeError):
        openssl.load_private(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert openssl._lib.ERR_get_error() == 0
    key = openssl.generate("ec")
    assert not key.public_key().verify(b"\x30\x02\x00\x00", b"m")
    assert openssl._lib.ERR_get_error() == 0


def test_a_huge_key_file_is_refused_before_libcrypto_sees_it() -> None:
    with pytest.raises(KeyDecodeError, match="larger than 1024 KiB"):
        openssl.load_public(b"A" * (2 << 20))


def test_keys_and_signatures_are_freed() -> None:
    """A daemon signs for months: each object libcrypto allocates must go back."""
    pems = [openssl.generate(kind).pem() for kind in ("ec", "ed25519")]

    def round_trip() -> None:
        for pem in pems:
            key = openssl.load_private(pem)
            signature = key.sign(b"auth request")
            public = openssl.load_public(key.public_key().pem())
            assert public.verify(signature, b"auth request")
            if key.kind == "ec":
                assert openssl.ecdsa_der(openssl.ecdsa_raw(signature)) == signature
        with pytest.raises(KeyDecodeError):
            openssl.load_private(b"junk")
        openssl.generate("ed25519").pem()

    for _ in range(200):  # let the allocator and ctypes' caches settle
        round_trip()
    before = _rss()
    for _ in range(1500):
        round_trip()
    # ~10 EVP_PKEYs, 2 BIOs, an MD_CTX and an ECDSA_SIG per round: a leak of any of
    # them grows the heap by megabytes over 1500 rounds
    assert _rss() - before < 1 << 20


def test_every_function_has_its_types_declared() -> None:
    for name in openssl._SIGNATURES:
        func = getattr(openssl._lib, name)
        assert isinstance(func, ctypes._CFuncPtr)
        assert func.argtypes is not None, name
