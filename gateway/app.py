"""The gateway's app factory: ``uvicorn gateway.app:create_app --factory``. It only wires: the
settings, the services behind the gateway, token checks, rate limits, the OpenAPI document,
the middleware, the routes (``gateway.routes``) and what runs for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from domain.principal import Principal, principal_from_claims
from gateway.cors import CORSMiddleware
from gateway.docs import install_docs
from gateway.metrics import install_counting, start_listener
from gateway.openapi import DESCRIPTION, TITLE, OpenAPISource
from gateway.proxy import Forwarder, InternalAddresses, Limits
from gateway.ratelimit import Backend, MemoryBackend, RateLimiter, RedisBackend
from gateway.routes import health, openapi
from gateway.routes.proxy import Proxy
from gateway.routing import is_public, resolve
from gateway.settings import GatewaySettings
from gateway.uploads import UNBOUNDED
from gateway.upstream import Upstreams
from kit import tracing
from kit.addresses import ClientAddress
from kit.errors import install_error_handlers
from kit.logging import configure_logging
from kit.middleware import BodyLimitMiddleware, RequestContextMiddleware
from kit.runtime import freeze_startup_objects
from kit.tokens import JWKSKeySource, TokenVerifier


def create_app(
    settings: GatewaySettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    """The gateway; ``http_client``, when given, carries every call to the services (the
    in-process test suite's transport) and stays the caller's to close."""
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, as_json=settings.log_json)
    upstreams = Upstreams.from_settings(settings, http_client=http_client)
    verifier = _verifier(settings, upstreams)
    limiter = _limiter(settings)
    source = OpenAPISource(
        upstreams.clients,
        upstreams.urls,
        owner=resolve,
        is_public=is_public,
        cache_seconds=settings.openapi_cache_seconds,
        description=DESCRIPTION,
    )
    tracer_provider = tracing.provider_from_env("gateway")

    app = FastAPI(
        title="govsocial gateway",
        version="0.1.0",
        lifespan=_lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.upstreams = upstreams
    app.state.verifier = verifier
    app.state.limiter = limiter
    app.state.openapi = source
    install_error_handlers(app)
    # every body but an upload's, which the proxy streams under its own cap (gateway.uploads)
    app.add_middleware(BodyLimitMiddleware, max_body_size=settings.max_body_size, unbounded=UNBOUNDED)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, origins=settings.cors_origins, max_age=settings.cors_max_age_seconds
        )
    if settings.metrics_enabled:
        install_counting(app)
    app.add_middleware(RequestContextMiddleware)
    tracing.install_tracing(app, tracer_provider, upstreams.distinct_clients)

    app.include_router(health.router)
    app.include_router(openapi.router)
    if settings.docs_enabled:
        install_docs(app, title=TITLE)
    proxy = Proxy(
        settings=settings,
        targets=upstreams.targets,
        forwarder=_forwarder(settings, upstreams, tracer_provider),
        source=source,
        verifier=verifier,
        limiter=limiter,
        client_address=ClientAddress(settings.trusted_proxies, hops=settings.trusted_proxy_hops),
    )
    app.router.routes[0:0] = proxy.routes()
    return app


def _verifier(settings: GatewaySettings, upstreams: Upstreams) -> TokenVerifier[Principal]:
    """Checks bearer tokens against identity's published keys."""
    return TokenVerifier(
        JWKSKeySource(
            upstreams.urls["identity"] + "/.well-known/jwks.json",
            client=upstreams.clients["identity"],
            cache_seconds=settings.jwks_cache_seconds,
        ),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway_seconds,
        max_lifetime=settings.token_max_lifetime_seconds,
        principal=principal_from_claims,
    )


def _limiter(settings: GatewaySettings) -> RateLimiter | None:
    """Counts in Redis when one is configured (shared by replicas), else in memory."""
    if not settings.rate_limit_enabled:
        return None
    backend: Backend = (
        RedisBackend(
            settings.redis_url, prefix=settings.redis_key_prefix, timeout=settings.redis_timeout_seconds
        )
        if settings.redis_url
        else MemoryBackend()
    )
    return RateLimiter(backend, settings.rate_limits)


def _forwarder(
    settings: GatewaySettings, upstreams: Upstreams, tracer_provider: TracerProvider | None
) -> Forwarder:
    secret = settings.client_address_secret
    return Forwarder(
        Limits(
            timeout=settings.upstream_timeout_seconds,
            max_response_bytes=settings.upstream_max_response_bytes,
            stream_idle_timeout=settings.stream_idle_timeout_seconds,
            max_download_bytes=settings.upstream_max_download_bytes,
        ),
        InternalAddresses(upstreams.urls.values()),
        address_secret=secret.get_secret_value() if secret is not None else None,
        tracer_provider=tracer_provider,
    )


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Serves the metrics on their own port, learns the route templates in the background,
    and closes every connection at the end."""
    settings: GatewaySettings = app.state.settings
    source: OpenAPISource = app.state.openapi
    listener = start_listener(
        getattr(app.state, "metrics", None), settings.metrics_host, settings.metrics_port
    )
    if listener is not None:
        app.state.metrics_port = listener.port
    freeze_startup_objects()
    warming = (
        asyncio.create_task(source.warm_up(), name="gateway-openapi-warm-up")
        if settings.openapi_warm_up
        else None
    )
    try:
        yield
    finally:
        if listener is not None:
            await listener.stop()
        if warming is not None:
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await warming
        limiter: RateLimiter | None = app.state.limiter
        if limiter is not None:
            await limiter.aclose()
        upstreams: Upstreams = app.state.upstreams
        await upstreams.aclose()
        tracing.shutdown_tracing(app)
