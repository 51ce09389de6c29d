"""The gateway's app factory: ``uvicorn gateway.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from starlette.responses import Response

from gateway import ratelimit
from gateway.cors import CORSMiddleware
from gateway.docs import install_docs
from gateway.metrics import MetricsListener, install_counting
from gateway.openapi import OpenAPISource
from gateway.proxy import InternalAddresses, Limits, forward
from gateway.ratelimit import Backend, Decision, MemoryBackend, RateLimiter, RedisBackend
from gateway.routing import is_public, request_path, resolve, route_for, upstreams
from gateway.settings import GatewaySettings
from gateway.upstream import AiohttpUpstream, HttpxUpstream, Upstream
from kit import tracing
from kit.addresses import ClientAddress
from kit.errors import NotFound, ServiceUnavailable, install_error_handlers, problem_response
from kit.logging import configure_logging
from kit.metrics import NamedRoute, set_route_label
from kit.middleware import BodyLimitMiddleware, RequestContextMiddleware
from kit.runtime import freeze_startup_objects
from kit.tokens import JWKSKeySource, TokenVerifier, bearer_token

log = logging.getLogger("gateway")

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
OTHER_METHODS = ["HEAD", "OPTIONS", "TRACE"]
TITLE = "govsocial API"
DESCRIPTION = (
    "The intranet social API suite: identity, feed and groups behind one gateway. Sign in with "
    "`POST /api/v1/auth/token` (OAuth2 password grant) and send the access token as "
    "`Authorization: Bearer …`. Errors are RFC 9457 problem+json."
)


def _upstream_client(settings: GatewaySettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
        ),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
        ),
    )


def _rate_backend(settings: GatewaySettings) -> Backend:
    if settings.redis_url:
        return RedisBackend(
            settings.redis_url, prefix=settings.redis_key_prefix, timeout=settings.redis_timeout_seconds
        )
    return MemoryBackend()


def create_app(
    settings: GatewaySettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, as_json=settings.log_json)
    services = upstreams(settings)
    # One connection pool per service, so a service that hangs cannot starve the others.
    # The httpx clients serve the gateway's own calls (keys, documents, readiness); requests
    # are forwarded through ``upstreams`` (aiohttp, unless a client is injected).
    clients = {name: http_client or _upstream_client(settings) for name in services}
    upstream_pools: dict[str, Upstream] = {
        name: (
            HttpxUpstream(http_client, timeout=settings.upstream_timeout_seconds)
            if http_client is not None
            else AiohttpUpstream(
                max_connections=settings.upstream_max_connections,
                connect_timeout=settings.upstream_connect_timeout_seconds,
                keepalive_timeout=settings.upstream_keepalive_seconds,
            )
        )
        for name in services
    }
    verifier = TokenVerifier(
        JWKSKeySource(
            services["identity"] + "/.well-known/jwks.json",
            client=clients["identity"],
            cache_seconds=settings.jwks_cache_seconds,
        ),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway_seconds,
        max_lifetime=settings.token_max_lifetime_seconds,
    )
    limiter = (
        RateLimiter(_rate_backend(settings), settings.rate_limits) if settings.rate_limit_enabled else None
    )
    client_address = ClientAddress(settings.trusted_proxies, hops=settings.trusted_proxy_hops)
    limits = Limits(
        timeout=settings.upstream_timeout_seconds,
        max_response_bytes=settings.upstream_max_response_bytes,
        stream_idle_timeout=settings.stream_idle_timeout_seconds,
    )
    internal = InternalAddresses(services.values())
    source = OpenAPISource(
        clients,
        services,
        owner=resolve,
        is_public=is_public,
        cache_seconds=settings.openapi_cache_seconds,
        description=DESCRIPTION,
    )

    async def warm_up() -> None:
        """Learns the route templates (for metrics labels) once the services are up."""
        for delay in (2, 10, 30, 60, 120, 300):
            await asyncio.sleep(delay)
            if "x-unavailable-services" not in await source.document():
                return

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        listener = None
        metrics = getattr(app.state, "metrics", None)
        if metrics is not None and settings.metrics_port is not None:
            listener = MetricsListener(metrics.registry, settings.metrics_host, settings.metrics_port)
            try:
                app.state.metrics_port = listener.start()
            except OSError as exc:
                raise RuntimeError(
                    f"Cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: {exc}"
                ) from exc
        freeze_startup_objects()
        warming = asyncio.create_task(warm_up(), name="gateway-openapi-warm-up")
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await warming
            if limiter is not None:
                await limiter.aclose()
            for pool in upstream_pools.values():
                await pool.aclose()
            if http_client is None:
                for client in clients.values():
                    await client.aclose()
            tracing.shutdown_tracing(app)

    app = FastAPI(
        title="govsocial gateway",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.verifier = verifier
    app.state.http_client = clients["identity"]
    app.state.upstream_clients = clients
    app.state.limiter = limiter
    app.state.openapi = source
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_size=settings.max_body_size)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, origins=settings.cors_origins, max_age=settings.cors_max_age_seconds
        )
    if settings.metrics_enabled:
        install_counting(app)
    app.add_middleware(RequestContextMiddleware)
    distinct = {id(client): client for client in clients.values()}.values()
    tracing.install_tracing(app, tracing.provider_from_env("gateway"), distinct)

    @app.get("/health/live", tags=["health"], summary="Liveness probe")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"], summary="Readiness: every upstream is ready")
    async def ready() -> dict[str, Any]:
        async def check(name: str) -> str:
            try:
                resp = await clients[name].get(services[name] + "/health/ready", timeout=2)
            except httpx.HTTPError:
                return "unreachable"
            return "ready" if resp.status_code == 200 else "not ready"

        names = list(services)
        results = await asyncio.gather(*(check(name) for name in names))
        report = dict(zip(names, results, strict=True))
        if any(v != "ready" for v in report.values()):
            error = ServiceUnavailable(
                "Not every service is ready: " + ", ".join(f"{k} {v}" for k, v in report.items()),
                retry_after=5,
            )
            error.extra["upstreams"] = report
            raise error
        return {"status": "ready", "upstreams": report}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return await source.document()

    if settings.docs_enabled:
        install_docs(app, title=TITLE)

    async def proxy(request: Request) -> Response:
        path = request_path(request.scope)
        route = route_for(path)
        if route is None or any(segment in {".", ".."} for segment in path.split("/")):
            raise NotFound("No resource at this path.")
        templates = source.templates
        template = templates.match(path)
        set_route_label(request.scope, template or route.prefix)
        decisions: list[Decision] = []
        group = settings.rate_limit_group(path)
        peer = request.client.host if request.client else "unknown"
        address = client_address(peer, request.headers.get("x-forwarded-for"))
        request.state.client_address = address
        if limiter is not None and (decision := await limiter.hit(group, "address", address)):
            decisions.append(decision)
        # A method no route has is the service's to refuse (405 with its Allow), token or not.
        needs_token = request.method in METHODS and not is_public(request.method, path)
        if not any(not d.allowed for d in decisions) and needs_token:
            principal = await verifier.verify(bearer_token(request))
            request.state.principal = principal
            if limiter is not None and (decision := await limiter.hit(group, "token", principal.subject)):
                decisions.append(decision)
        extra = ratelimit.headers(decisions)
        if any(not d.allowed for d in decisions):
            return problem_response(
                request,
                429,
                "Too Many Requests",
                "Too many requests; try again after the time in Retry-After.",
                slug="rate-limited",
                headers=extra,
            )
        response = await forward(
            request, upstream_pools[route.service], services[route.service], route.service, limits, internal
        )
        for key, value in extra.items():
            response.headers.setdefault(key, value)
        if response.status_code == 405 and template and templates.methods(template):
            # A FastAPI service names only the first matching route's methods in Allow.
            response.headers["Allow"] = ", ".join(templates.methods(template))
        return response

    # Plain Starlette routes: the proxy takes the request as it is, so FastAPI's parameter
    # solving would only cost (about a tenth of the gateway's own throughput; decision 0013).
    # They come first, so that the requests they serve (nearly all) are matched at once; no
    # route of the gateway's own lies under their prefixes.
    methods = [*METHODS, *OTHER_METHODS]
    app.router.routes[0:0] = [
        NamedRoute(prefix, proxy, methods=methods, include_in_schema=False)
        for prefix in ("/api/v1/{path:path}", "/.well-known/{path:path}", "/scim/v2/{path:path}")
    ]
    return app
