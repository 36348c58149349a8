"""Short-lived download links: HMAC over artifact id and expiry, no Authorization needed.

The Mender client fetches the artifact URI without a token (docs/device-api.md,
"Download"), so the link itself is the credential.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from pyupdate_server.errors import Forbidden
from pyupdate_server.storage.base import BlobStore

DOWNLOAD_PATH = "/api/devices/v1/deployments/download/artifacts"
# a delta's fallback to the full artifact (api/devices/full_source.py), per device
FULL_SOURCE_PATH = "/api/devices/v1/deployments/pyupdate/full_source"


def _rfc3339(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Link:
    uri: str
    expire: str  # RFC 3339


class LinkSigner:
    def __init__(
        self,
        secret: bytes,
        base_url: str | None,
        ttl: int,
        previous: tuple[bytes, ...] = (),
        *,
        purpose: bytes = b"download-link:",
        path: str = DOWNLOAD_PATH,
    ) -> None:
        """base_url: the configured public URL; None uses the one each caller passes.

        previous: retired secrets whose links still verify (a rotation in progress).
        purpose, path: what the links are for and the route they name; each purpose has
        its own key, so a link made for one route never verifies at another.
        """
        self._key = hashlib.sha256(purpose + secret).digest()
        self._old = [hashlib.sha256(purpose + p).digest() for p in previous]
        self.base_url = base_url.rstrip("/") if base_url else None
        self.ttl = ttl
        self.path = path

    def _mac(self, artifact_id: str, expire: int, key: bytes | None = None) -> str:
        msg = f"{artifact_id}:{expire}".encode()
        return hmac.new(key or self._key, msg, hashlib.sha256).hexdigest()

    def make(self, artifact_id: str, now: float | None = None, base: str | None = None) -> Link:
        expire = int(now if now is not None else time.time()) + self.ttl
        query = urlencode(
            {"x-men-expire": expire, "x-men-signature": self._mac(artifact_id, expire)}
        )
        stamp = _rfc3339(expire)
        prefix = self.base_url or (base or "").rstrip("/")
        return Link(f"{prefix}{self.path}/{artifact_id}?{query}", stamp)

    def check(self, artifact_id: str, expire: str, signature: str) -> None:
        if not (expire.isascii() and expire.isdigit() and len(expire) <= 12):
            raise Forbidden("x-men-expire is not a timestamp")
        expire_ts = int(expire)
        # bytes, not str: compare_digest refuses non-ASCII text with a TypeError
        given = signature.encode("utf-8", "replace")
        if not any(
            hmac.compare_digest(self._mac(artifact_id, expire_ts, key).encode(), given)
            for key in (self._key, *self._old)
        ):
            raise Forbidden("download link signature is invalid")
        if expire_ts < time.time():
            raise Forbidden("download link expired")


def download_link(
    links: LinkSigner, store: BlobStore, artifact_id: str, blob: str, base: str | None
) -> Link:
    """Where a device fetches an artifact: a presigned URL straight to the object store
    when there is one (the bytes never pass through the server), else our signed link.
    Both last `download_link_ttl` seconds (docs/security.md, "Download links")."""
    now = int(time.time())
    url = store.download_url(blob, links.ttl)
    if url is None:
        return links.make(artifact_id, now=now, base=base)
    return Link(url, _rfc3339(now + links.ttl))
