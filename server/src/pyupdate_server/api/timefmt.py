"""Timestamps on the wire: RFC 3339 in UTC with a `Z`, as Go's time.Time parses them.

The database keeps naive UTC; mender-cli refuses a timestamp without a zone.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import PlainSerializer


def _rfc3339(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


Timestamp = Annotated[dt.datetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]
