"""Pure-ASGI middleware every process uses: request ids, the body size limit, security headers
and the access log.

The access log records of the caller what the principal the app left in ``request.state``
offers (``kit.logging.caller_fields``), and nothing when there is none."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Collection, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.errors import PROBLEM_JSON, HTTPProblem, PayloadTooLarge
from kit.i18n import language_headers, scope_language
from kit.logging import caller_fields, request_id_var

access_log = logging.getLogger("access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:
                return None
    return None


class RequestContextMiddleware:
    """Takes ``X-Request-ID`` from the request (when it is sane) or makes one, echoes it on
    the response, adds security headers and writes one access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _with_request_headers(message.get("headers", ()), request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            level = logging.DEBUG if scope["path"].startswith("/health/") else logging.INFO
            if access_log.isEnabledFor(level):
                access_log.log(
                    level,
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "caller": caller_fields(scope.get("state", {}).get("principal")),
                    },
                )
            request_id_var.reset(token)


_SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"))


def _with_request_headers(raw: Iterable[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    """A response's headers with ``X-Request-ID`` set to ``request_id`` (any other one
    dropped) and the security headers it does not set itself: one pass over the raw list."""
    headers = [(k, v) for k, v in raw if k.lower() != b"x-request-id"]
    present = {k.lower() for k, _ in headers}
    headers.append((b"x-request-id", request_id.encode("latin-1")))
    headers.extend(pair for pair in _SECURITY_HEADERS if pair[0] not in present)
    return headers


class BodyLimitMiddleware:
    """413 problem+json for a body over ``max_body_size``: at once when Content-Length says so,
    or as soon as a chunked body passes the limit.

    ``unbounded`` names the (method, path) pairs whose route bounds its body itself, as it
    streams (an upload written to disk as it arrives): their requests pass untouched."""

    def __init__(self, app: ASGIApp, max_body_size: int, unbounded: Collection[tuple[str, str]] = ()) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.unbounded = frozenset(unbounded)
        self.too_large = PayloadTooLarge(
            "The request body exceeds {limit} bytes.", params={"limit": max_body_size}
        )

    async def _reject(self, scope: Scope, send: Send) -> None:
        language = scope_language(scope)
        body = self.too_large.problem(
            instance=scope.get("path"),
            trace_id=scope.get("state", {}).get("request_id"),
            language=language,
        )
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": self.too_large.status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                    *(
                        (name.lower().encode(), value.encode())
                        for name, value in language_headers(language).items()
                    ),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in self.unbounded:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.max_body_size
            except ValueError:
                too_large = False
            if too_large:
                await self._reject(scope, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    # Raised as Starlette's HTTP error, which each app renders in its own
                    # format (identity's SCIM paths answer scim+json).
                    raise HTTPProblem(self.too_large)
            return message

        await self.app(scope, limited_receive, send)
