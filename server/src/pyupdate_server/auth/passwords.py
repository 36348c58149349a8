"""Password hashing with the stdlib's scrypt (no extra dependency), in a pool of its own.

Each scrypt call holds about 16 MiB for about 40 ms. Logins are the one thing an
anonymous caller can make us hash, so they run in `PasswordPool`: a few threads of
their own and a short queue, never the worker pool the device routes share
(docs/security.md, "Limits").
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pyupdate_server.errors import TooManyRequests

_N, _R, _P = 2**14, 8, 1
T = TypeVar("T")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


_dummy: str | None = None
_dummy_lock = threading.Lock()


def dummy_hash() -> str:
    """A hash of a random password with the real parameters: an unknown user's login
    costs the same hash as a known one's, so the answer time does not tell them apart."""
    global _dummy
    with _dummy_lock:
        if _dummy is None:
            _dummy = hash_password(secrets.token_hex(16))
        return _dummy


def _lower_priority() -> None:
    """Hashing threads run at the lowest CPU priority: on a busy machine the scheduler
    serves the event loop (device polls) first. Linux applies nice per thread."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class PasswordPool:
    """`workers` hashing threads and at most `queue` callers waiting for one."""

    def __init__(self, workers: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(
            workers, thread_name_prefix="password", initializer=_lower_priority
        )
        self._capacity = workers + queue
        self._busy = 0  # only touched on the event loop: no lock needed

    def check(self) -> None:
        """429 now if a login would not get a place: before any other work is done."""
        if self._busy >= self._capacity:
            raise TooManyRequests("too many logins in progress: try again later")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        self.check()
        self._busy += 1
        try:
            return await asyncio.wrap_future(self._executor.submit(fn, *args))
        finally:
            self._busy -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
