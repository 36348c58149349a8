"""The webhook delivery loop: one asyncio task per server process (started by app.py).

It never holds up a request: it runs beside them on the event loop, does its database
work in worker threads (short transactions: claim, record), and sends with httpx's
async client, each attempt bounded by `webhook_timeout` (connect, send and the status
line together; the response body is never read). At most `webhook_concurrency`
attempts are in flight per process, so a receiver that answers slowly or never costs
its own attempts' timeouts and nothing else. Which rows a process sends, and why two
processes never send the same attempt: services/outbox.py, `claim`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from urllib.parse import urlsplit

import httpx

from pyupdate_server import __version__
from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import utcnow
from pyupdate_server.metrics import Metrics
from pyupdate_server.services import outbox, webhooks
from pyupdate_server.services.outbox import Claim, Result
from pyupdate_server.settings import Settings

log = logging.getLogger(__name__)

POLL = 1.0  # seconds between two looks at the outbox when nothing is due
HOUSEKEEPING = 10.0  # seconds between two checks of the outbox's cap and lost leases
SIGNATURE = "X-Pyupdate-Signature"
TIMESTAMP = "X-Pyupdate-Timestamp"
MENDER_SIGNATURE = "X-Men-Signature"


def sign(secret_hex: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The signature headers for `body` sent at `timestamp` (docs/webhooks.md, "Signature").

    X-Pyupdate-Signature covers the timestamp too, so a recorded request cannot be
    replayed later under a new timestamp; X-Men-Signature is Mender's (the body alone).
    """
    if not secret_hex:
        return {}
    key = bytes.fromhex(secret_hex)
    signed = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        TIMESTAMP: str(timestamp),
        SIGNATURE: f"sha256={signed}",
        MENDER_SIGNATURE: hmac.new(key, body, hashlib.sha256).hexdigest(),
    }


class Sender:
    """The loop, its client and its bounds; `run` until cancelled."""

    def __init__(self, db: Database, settings: Settings, metrics: Metrics) -> None:
        self.db = db
        self.timeout = settings.webhook_timeout
        self.max_attempts = settings.webhook_max_attempts
        self.retry_base = settings.webhook_retry_base
        self.concurrency = settings.webhook_concurrency
        self.outbox_max = settings.webhook_outbox_max
        self.allow_private = settings.webhook_allow_private
        self.metrics = metrics
        self._in_flight: set[asyncio.Task[None]] = set()
        self._failing = False

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=False, trust_env=False, limits=limits
        ) as client:
            next_housekeeping = 0.0
            try:
                while True:
                    busy = False
                    try:
                        if time.monotonic() >= next_housekeeping:
                            next_housekeeping = time.monotonic() + HOUSEKEEPING
                            await asyncio.to_thread(self._housekeeping)
                        busy = await self._start_due(client)
                        self._recovered()
                    except Exception as exc:  # the database went away: try again later
                        self._failed(exc)
                    await asyncio.sleep(0.05 if busy else POLL)
            finally:
                for task in list(self._in_flight):
                    task.cancel()

    async def _start_due(self, client: httpx.AsyncClient) -> bool:
        """Claim what is due, up to the free slots; True if there may be more."""
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return False
        now = utcnow()
        param = now.strftime("%Y-%m-%d %H:%M:%S.%f") if self.db.is_sqlite else now
        if await self.db.aquick(outbox.DUE_SQL, {"now": param, "max": self.max_attempts}) is None:
            return False
        claims = await asyncio.to_thread(self._claim, free)
        for c in claims:
            task = asyncio.create_task(self._deliver(client, c))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claims) == free

    def _claim(self, limit: int) -> list[Claim]:
        with self.db.write() as session:
            return outbox.claim(session, limit, self.timeout, self.max_attempts)

    async def _deliver(self, client: httpx.AsyncClient, c: Claim) -> None:
        start = time.monotonic()
        status: int | None = None
        error = ""
        try:
            async with asyncio.timeout(self.timeout):
                if not self.allow_private:
                    await self._check_address(c.url)
                body = c.body.encode()
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": f"pyupdate-server/{__version__}",
                    "X-Pyupdate-Event": c.event_type,
                    "X-Pyupdate-Delivery": c.event_id,
                    "X-Pyupdate-Attempt": str(c.attempt),
                    **sign(c.secret, int(time.time()), body),
                }
                # streamed and closed unread: only the status line counts, so a huge or
                # endless answer costs nothing
                async with client.stream("POST", c.url, content=body, headers=headers) as r:
                    status = r.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
        except TimeoutError:
            error = f"no answer within {self.timeout} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        except AddressRefused as exc:
            error = str(exc)
        result = Result(status, error, int((time.monotonic() - start) * 1000))
        try:
            outcome = await asyncio.to_thread(self._finish, c, result)
        except Exception as exc:
            # the lease runs out and another attempt follows; this one is counted already
            self._failed(exc)
            return
        self.metrics.webhook_deliveries.labels(outcome).inc()
        if outcome != "delivered":
            log.warning(
                "webhook delivery %s: %s",
                outcome,
                error,
                extra={"webhook": c.webhook_id, "event": c.event_type, "attempt": c.attempt},
            )

    def _finish(self, c: Claim, result: Result) -> str:
        with self.db.write() as session:
            return outbox.finish(session, c, result, self.max_attempts, self.retry_base)

    async def _check_address(self, url: str) -> None:
        """With webhook_allow_private off: the name may have changed since the URL was
        accepted (DNS), so every attempt checks where it leads now."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
        for info in infos:
            address = str(info[4][0])
            if not webhooks.public_address(address):
                raise AddressRefused(f"{host} is {address}, not a public address")

    def _housekeeping(self) -> None:
        with self.db.write() as session:
            outbox.give_up_lost(session, self.max_attempts)
            dropped = outbox.drop_over_cap(session, self.outbox_max)
        if dropped:
            self.metrics.webhook_dropped.inc(dropped)
            log.warning(
                "webhook outbox over %d events: dropped the %d oldest",
                self.outbox_max,
                dropped,
                extra={"dropped": dropped},
            )

    def _failed(self, exc: Exception) -> None:
        if not self._failing:  # once per outage, not once a second
            log.warning("webhook delivery paused: %s", str(exc).splitlines()[0][:300])
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("webhook delivery resumed")
        self._failing = False


class AddressRefused(Exception):
    pass
