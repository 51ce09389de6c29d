"""CORS for browser frontends on other origins, answered entirely at the gateway.

Only listed origins get CORS headers, credentials are never allowed (clients send bearer
tokens, not cookies), and preflights never reach a service: an allowed one is a 204, a refused
one a 403 problem+json without CORS headers, so the browser blocks the request. A browser app
reads the headers the API documents (``EXPOSED_HEADERS``: a test holds them to the OpenAPI
document's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.errors import PROBLEM_JSON, Forbidden
from kit.i18n import language_headers, scope_language

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "idempotency-key",
    "if-match",
    "if-none-match",
    "if-range",
    "last-event-id",
    "range",
    "x-request-id",
)
EXPOSED_HEADERS = (
    "Accept-Ranges",
    "Content-Disposition",
    "Content-Range",
    "ETag",
    "Idempotent-Replayed",
    "Link",
    "Location",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "X-Request-ID",
)


class CORSMiddleware:
    def __init__(self, app: ASGIApp, *, origins: Sequence[str], max_age: int = 600) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)
        self.max_age = max_age

    def _allowed(self, origin: str) -> bool:
        return origin != "null" and (self.any_origin or origin in self.origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(scope, headers, origin, send)
            return
        allowed = self._allowed(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                if allowed:
                    out["Access-Control-Allow-Origin"] = "*" if self.any_origin else origin
                    out["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, headers: Headers, origin: str, send: Send) -> None:
        method = headers["access-control-request-method"].strip().upper()
        requested = [
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        ]
        refused = []
        if not self._allowed(origin):
            refused.append("origin")
        if method not in ALLOWED_METHODS:
            refused.append("method")
        if any(h not in ALLOWED_HEADERS for h in requested):
            refused.append("headers")
        if refused:
            error = Forbidden(
                "This cross-origin request is not allowed ({refused}).",
                params={"refused": ", ".join(refused)},
                slug="cors-refused",
            )
            language = scope_language(scope)
            trace_id = scope.get("state", {}).get("request_id")
            body = error.problem(instance=scope["path"], trace_id=trace_id, language=language)
            answer = [("content-type", PROBLEM_JSON), *language_headers(language).items()]
            await _send(send, error.status, json.dumps(body).encode(), answer)
            return
        await _send(
            send,
            204,
            b"",
            [
                ("access-control-allow-origin", "*" if self.any_origin else origin),
                ("access-control-allow-methods", ", ".join(ALLOWED_METHODS)),
                ("access-control-allow-headers", ", ".join(ALLOWED_HEADERS)),
                ("access-control-max-age", str(self.max_age)),
            ],
        )


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
    raw = [(k.encode(), v.encode()) for k, v in [*headers, ("vary", "Origin")]]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
