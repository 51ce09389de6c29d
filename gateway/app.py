"""The gateway's app factory: ``uvicorn gateway.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import Response

from gateway.openapi import merged_openapi
from gateway.proxy import forward
from gateway.routing import is_public, resolve, upstreams
from gateway.settings import GatewaySettings
from kit.errors import NotFound, ServiceUnavailable, install_error_handlers
from kit.logging import configure_logging
from kit.middleware import BodyLimitMiddleware, RequestContextMiddleware
from kit.tokens import JWKSKeySource, TokenVerifier, bearer_token

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def create_app(
    settings: GatewaySettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, as_json=settings.log_json)
    timeout = httpx.Timeout(
        settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
    )
    client = http_client or httpx.AsyncClient(
        timeout=timeout,
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
        ),
    )
    services = upstreams(settings)
    verifier = TokenVerifier(
        JWKSKeySource(
            services["identity"] + "/.well-known/jwks.json",
            client=client,
            cache_seconds=settings.jwks_cache_seconds,
        ),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if http_client is None:
            await client.aclose()

    app = FastAPI(
        title="govsocial gateway",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.verifier = verifier
    app.state.http_client = client
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_size=settings.max_body_size)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=METHODS,
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "If-Match",
                "If-None-Match",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Link",
                "Location",
                "Retry-After",
                "RateLimit",
                "RateLimit-Policy",
                "X-Request-ID",
            ],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)

    @app.get("/health/live", tags=["health"], summary="Liveness probe")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"], summary="Readiness: every upstream is ready")
    async def ready() -> dict[str, Any]:
        async def check(url: str) -> str:
            try:
                resp = await client.get(url + "/health/ready", timeout=2)
            except httpx.HTTPError:
                return "unreachable"
            return "ready" if resp.status_code == 200 else "not ready"

        results = await asyncio.gather(*(check(url) for url in services.values()))
        report = dict(zip(services, results, strict=True))
        if any(v != "ready" for v in report.values()):
            raise ServiceUnavailable(
                "Not every service is ready: " + ", ".join(f"{k} {v}" for k, v in report.items()),
                retry_after=5,
            )
        return {"status": "ready", "upstreams": report}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return await merged_openapi(client, services)

    async def proxy(request: Request) -> Response:
        path = request.url.path
        service = resolve(path)
        if service is None:
            raise NotFound("No resource at this path.")
        if not is_public(request.method, path):
            principal = await verifier.verify(bearer_token(request))
            request.state.principal = principal
        return await forward(request, client, services[service], service)

    for prefix in ("/api/v1/{path:path}", "/.well-known/{path:path}", "/scim/v2/{path:path}"):
        app.add_api_route(prefix, proxy, methods=METHODS, include_in_schema=False)
    return app
