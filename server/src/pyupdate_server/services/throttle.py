"""Fixed-window counters in the database: login attempts, pending-device creation.

The counters live in the `rate_limits` table, not in memory, so a limit holds for the
whole service when several server processes share one database (docs/security.md,
"Limits"). A window starts at a key's first hit and lasts `window` seconds; expired
rows are removed whenever a new one is made, so random keys cannot grow the table
beyond what one window's traffic wrote.
"""

from __future__ import annotations

import time

from sqlalchemy import delete
from sqlalchemy.orm import Session

from pyupdate_server.db import dialect
from pyupdate_server.db.models import RateLimit
from pyupdate_server.errors import TooManyRequests

MAX_KEY = 512


def check(session: Session, key: str, limit: int, window: int, what: str) -> None:
    """429 if `key` already used up `limit` in its window; counts nothing."""
    now = int(time.time())
    row = session.get(RateLimit, key[:MAX_KEY])
    if row is not None and row.expires > now and row.count >= limit:
        raise TooManyRequests(f"too many {what}: try again later", row.expires - now)


def hit(session: Session, key: str, limit: int, window: int, what: str) -> None:
    """Count one use of `key`, or 429 if it has used up `limit` in its window.

    The count is one upsert (db/dialect.py): processes counting the same new key at
    once both succeed. A refused hit raises, and the caller's transaction rolls the
    count back: a refused caller does not lengthen its own lock-out.
    """
    now = int(time.time())
    key = key[:MAX_KEY]
    if session.get(RateLimit, key) is None:
        session.execute(delete(RateLimit).where(RateLimit.expires <= now))
    count, expires = dialect.count_hit(session, RateLimit.__table__, key, now, window)
    if count > limit:
        raise TooManyRequests(f"too many {what}: try again later", expires - now)
