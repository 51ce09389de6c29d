"""OpenTelemetry tracing, off unless an exporter is configured with the standard ``OTEL_*``
variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) sends
spans over OTLP/HTTP, ``OTEL_TRACES_EXPORTER=console`` prints them, ``OTEL_SDK_DISABLED=true``
or ``OTEL_TRACES_EXPORTER=none`` keeps them off whatever else is set.

A process that traces gets a server span per HTTP request (the W3C ``traceparent`` it came with
is its parent) and a client span per request its httpx clients send (``traceparent`` goes out
with it); the gateway's forwarding client (aiohttp) sends the request span's ``traceparent``
(gateway/proxy.py). So a request through the gateway and into a service is one trace. Headers and bodies
are never recorded, nor the value of a secret query parameter (``kit.logging.redact``: a span's
URL is a log line of its own). Each app holds its own provider, so several apps live in one
test process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.logging import redact
from kit.metrics import route_label

EXCLUDED_PATHS = "/health/.*,/metrics"


def exporter_from_env(environ: Mapping[str, str]) -> SpanExporter | None:
    """The exporter the ``OTEL_*`` variables ask for, or None when tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    chosen = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if chosen == "none":
        return None
    if chosen == "console":
        return ConsoleSpanExporter()
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if chosen == "otlp" or endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return None


def provider_from_env(service: str, environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    environ = os.environ if environ is None else environ
    exporter = exporter_from_env(environ)
    if exporter is None:
        return None
    name = environ.get("OTEL_SERVICE_NAME") or f"govsocial-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _method_only(scope: Scope) -> tuple[str, dict[str, object]]:
    return str(scope.get("method", "HTTP")), {}


# The server span's attributes that hold the request's query (old and new conventions).
_QUERY_ATTRIBUTES = ("http.url", "url.full", "url.query")


def _redact_query(span: trace.Span, scope: Scope) -> None:
    """The server span's URL and query, with secret query parameters redacted."""
    attributes = getattr(span, "attributes", None) or {}
    for name in _QUERY_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, redact(value))


class RouteSpanName:
    """Names the request's span after its route template once routing is done (``GET
    /api/v1/items/{item_id}``), never after the raw path, whose ids would leak into span names."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                span = trace.get_current_span()
                route = route_label(scope)
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
            await send(message)

        await self.app(scope, receive, named)


def install_tracing(
    app: FastAPI, provider: TracerProvider | None, clients: Iterable[httpx.AsyncClient] = ()
) -> None:
    """Traces ``app``'s requests and what ``clients`` send; does nothing without a provider.
    Call it last among the ``add_middleware`` calls, so the span covers the whole request."""
    app.state.tracer_provider = provider
    if provider is None:
        return
    app.add_middleware(RouteSpanName)
    app.add_middleware(
        OpenTelemetryMiddleware,
        tracer_provider=provider,
        default_span_details=_method_only,
        server_request_hook=_redact_query,
        excluded_urls=EXCLUDED_PATHS,
        exclude_spans=["receive", "send"],
    )
    for client in clients:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


def shutdown_tracing(app: FastAPI) -> None:
    """Flushes the spans still buffered; for the end of the app's lifespan."""
    provider: TracerProvider | None = getattr(app.state, "tracer_provider", None)
    if provider is not None:
        provider.shutdown()
