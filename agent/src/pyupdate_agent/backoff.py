"""The one backoff rule: exponential from `base`, capped, spread at random by the caller's jitter.

Used by the deployment check after an error, the `success` report before the
commit deadline, and the resumes of a dropped download.
"""

from __future__ import annotations

import random


def backoff(attempt: int, cap: float, base: float = 1.0) -> float:
    """Seconds before attempt `attempt + 1`: base, 2·base, 4·base ... at most `cap`."""
    return min(cap, base * 2.0 ** (attempt - 1))


def jitter(seconds: float, spread: float) -> float:
    """`seconds` spread by ±`spread` (PollJitter), so a fleet does not poll in step."""
    return seconds * random.uniform(1 - spread, 1 + spread)
