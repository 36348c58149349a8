"""Prometheus metrics, one registry per app (tests build many apps in one process).

With `--workers N` each worker counts into its own files under `multiprocess_dir`
(prometheus_client's multiprocess mode, chosen by PROMETHEUS_MULTIPROC_DIR, which
serve.py sets before the workers start), and /metrics, whichever worker answers it,
sums them: the numbers are the whole server's (this host's), not one worker's. A
worker that died keeps its counts in the sum, so counters never go backwards.
"""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pyupdate_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pyupdate_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.auth_requests = Counter(
            "pyupdate_device_auth_requests",
            "Device auth requests by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "pyupdate_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retry, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_dropped = Counter(
            "pyupdate_webhook_dropped",
            "Webhook deliveries dropped because the outbox was over webhook_outbox_max",
            registry=self.registry,
        )

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=str(self.multiprocess_dir))
        return generate_latest(every_worker)


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): streaming downloads pass straight through."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
