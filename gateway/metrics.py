"""The gateway's Prometheus metrics: counted on the public app, served only on a listener of
their own (``GATEWAY_METRICS_HOST``/``GATEWAY_METRICS_PORT``), so the public port answers 404
for ``/metrics``: request counts per route and their latencies are no client's business."""

from __future__ import annotations

import asyncio
import logging
import threading
from wsgiref.simple_server import WSGIServer

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, start_http_server

from kit.metrics import HTTPMetrics, MetricsMiddleware

log = logging.getLogger("gateway.metrics")


def install_counting(app: FastAPI) -> HTTPMetrics:
    """Counts and times the app's requests, without a route that exposes them; a request for
    ``/metrics`` on the public port is counted as the 404 it gets."""
    metrics = HTTPMetrics(CollectorRegistry(auto_describe=True))
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics, exclude=())
    return metrics


class MetricsListener:
    """prometheus_client's own exposition server (a thread), on its own address."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Binds and serves; returns the port (the chosen one when ``port`` is 0)."""
        self._server, self._thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        self.port = int(self._server.server_address[1])
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        await asyncio.to_thread(server.shutdown)  # waits for the serving loop's next poll
        server.server_close()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)


def start_listener(metrics: HTTPMetrics | None, host: str, port: int | None) -> MetricsListener | None:
    """The listener of a gateway that counts (``metrics``) and has a port for it, serving;
    None for one that has neither. A port it cannot bind stops the gateway's start."""
    if metrics is None or port is None:
        return None
    listener = MetricsListener(metrics.registry, host, port)
    try:
        listener.start()
    except OSError as exc:
        raise RuntimeError(f"Cannot serve metrics on {host}:{port}: {exc}") from exc
    return listener
