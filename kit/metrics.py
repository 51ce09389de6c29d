"""Prometheus metrics for any process: requests counted and timed per route template, exposed at
``GET /metrics``.

Labels use the matched route's template (``/api/v1/items/{item_id}``), never the raw path, so
their number stays bounded; a request that matches no route is counted as ``<unmatched>``, and
one with a method HTTP does not define as ``OTHER``. A
process whose routes are catch-alls (the gateway) names the template itself with
``set_route_label``. Each app gets its own registry, so several apps live in one test process;
other parts of an app add their own series to it (``HTTPMetrics.counter``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ROUTE_LABEL = "metrics_route"
UNMATCHED = "<unmatched>"
# A method outside HTTP's own is labelled "OTHER": the method is the client's to choose, and
# every label value is a series kept for the life of the process.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
OTHER_METHOD = "OTHER"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HTTPMetrics:
    """The three series every process exposes, and the registry other series of the app join."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._counters: dict[str, Counter] = {}
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request to the end of the response body, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress", "Requests being answered.", ["method"], registry=registry
        )

    def counter(self, name: str, documentation: str, labels: Sequence[str]) -> Counter:
        """The app's counter ``name``, made on first use: code that counts something (the
        event receiver) asks for it where it counts, without a setup step of its own."""
        counter = self._counters.get(name)
        if counter is None:
            counter = Counter(name, documentation, labels, registry=self.registry)
            self._counters[name] = counter
        return counter


def set_route_label(scope: Scope, template: str) -> None:
    """Names the route template of this request for the metrics (catch-all routes use it)."""
    scope.setdefault("state", {})[ROUTE_LABEL] = template


class NamedRoute(Route):
    """A plain Starlette route (no FastAPI parameter solving) that names itself in
    ``scope["route"]`` when it matches, as FastAPI's routes do and FastAPI's router does not for
    plain routes: its requests, their 404s and 405s included, are labelled by its template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def route_label(scope: Scope) -> str:
    explicit = scope.get("state", {}).get(ROUTE_LABEL)
    if isinstance(explicit, str):
        return explicit
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


class MetricsMiddleware:
    """Pure-ASGI: counts and times every HTTP request except those to ``exclude``."""

    def __init__(self, app: ASGIApp, metrics: HTTPMetrics, exclude: Collection[str] = ("/metrics",)) -> None:
        self.app = app
        self.metrics = metrics
        self.exclude = frozenset(exclude)
        # Each series' child by its labels: ``labels()`` checks and locks on every call, and
        # the children never change once made (the registry keeps them as long).
        self._in_progress: dict[str, Any] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._latency: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else OTHER_METHOD
        status = 500
        started = time.perf_counter()
        in_progress = self._in_progress.get(method)
        if in_progress is None:
            in_progress = self._in_progress[method] = self.metrics.in_progress.labels(method)
        in_progress.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            in_progress.dec()
            elapsed = time.perf_counter() - started
            route = route_label(scope)
            counted = self._requests.get((method, route, status))
            if counted is None:
                counted = self._requests[method, route, status] = self.metrics.requests.labels(
                    method, route, str(status)
                )
            counted.inc()
            timed = self._latency.get((method, route))
            if timed is None:
                timed = self._latency[method, route] = self.metrics.latency.labels(method, route)
            timed.observe(elapsed)


def install_metrics(app: FastAPI, *, path: str = "/metrics") -> HTTPMetrics:
    """Adds the middleware and the ``GET path`` route to ``app``; call it before the app starts.
    An app that has them already (every service app does) keeps the ones it has."""
    existing: HTTPMetrics | None = getattr(app.state, "metrics", None)
    if existing is not None:
        return existing
    metrics = HTTPMetrics(CollectorRegistry(auto_describe=True))
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics, exclude=(path,))

    async def expose_metrics(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_route(path, expose_metrics, methods=["GET"], include_in_schema=False)
    return metrics
