"""Prometheus metrics: request counts and latency histograms per route, exposure counters; and the read-key guard,
the other plain ASGI layer."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("recsys_http_requests", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("recsys_http_request_seconds", "Request latency", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.exposures_sent = Gauge("recsys_exposures_sent", "Exposure events delivered", registry=self.registry)
        self.exposures_queued = Gauge("recsys_exposures_queued", "Exposure events waiting for the broker",
                                      registry=self.registry)
        self.exposures_lost = Gauge("recsys_exposures_lost", "Exposure events lost (broker away or overloaded)",
                                    registry=self.registry)
        self.exposures_connected = Gauge("recsys_exposures_sender_connected",
                                         "1 while the exposure sender holds a broker connection",
                                         registry=self.registry)
        self.exposures_errors = Gauge("recsys_exposures_sender_errors",
                                      "Broker failures the exposure sender recovered from", registry=self.registry)
        self.redis_used_memory = Gauge("recsys_redis_used_memory_bytes", "Redis used_memory", registry=self.registry)
        self.redis_max_memory = Gauge("recsys_redis_maxmemory_bytes", "Redis maxmemory (0: unlimited)",
                                      registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        # A labelled child looked up once per (route, method, status): `labels()` on every request cost more
        # than counting itself.
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(route, method, str(status)),
                                              self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)


class MetricsMiddleware:
    """Plain ASGI (no per-request task or body buffering): counts and times every HTTP request by route."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], Metrics]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            self.metrics().record(getattr(route, "path", "unmatched"), scope["method"], status[0],
                                  time.perf_counter() - started)


class ReadKeyMiddleware:
    """Plain ASGI, installed only when RECSYS_API_READ_KEY is set: every route but the health checks answers 401
    unless X-API-Key is the read key or the API key."""

    OPEN_PATHS = frozenset({"/health", "/ready"})
    BODY = b'{"detail":"missing or wrong X-API-Key header: this API is guarded by RECSYS_API_READ_KEY"}'

    def __init__(self, app: ASGIApp, keys: tuple[bytes, ...]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self.BODY)).encode())]})
        await send({"type": "http.response.body", "body": self.BODY})

    def _allowed(self, scope: Scope) -> bool:
        presented = next((value for name, value in scope["headers"] if name == b"x-api-key"), None)
        return presented is not None and any(hmac.compare_digest(presented, key) for key in self.keys)
