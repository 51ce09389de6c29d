"""One error family rendered as RFC 9457 problem+json.

    APIError(status, title, detail)
     ├── BadRequest         400
     ├── Unauthorized       401  (adds WWW-Authenticate: Bearer)
     ├── Forbidden          403
     ├── NotFound           404
     ├── Conflict           409
     ├── PayloadTooLarge    413
     ├── Unprocessable      422  (field problems in ``errors``)
     ├── TooManyRequests    429  (adds Retry-After)
     └── ServiceUnavailable 503  (adds Retry-After)

Routes raise these; the handlers installed by ``install_error_handlers`` also render
Starlette's HTTP errors (404 on unknown routes, 405 with Allow), request validation errors
and any unexpected exception (a generic 500 that never shows a trace).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://govsocial.dev/problems/"

log = logging.getLogger("kit.errors")


class APIError(Exception):
    status = 500
    title = "Internal Server Error"
    slug = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        title: str | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        slug: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if title is not None:
            self.title = title
        if slug is not None:
            self.slug = slug
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BadRequest(APIError):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(APIError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, *, error: str | None = "invalid_token") -> None:
        challenge = f'Bearer error="{error}"' if error else "Bearer"
        super().__init__(
            detail or "A valid bearer token is required.",
            headers={"WWW-Authenticate": challenge},
        )


class Forbidden(APIError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(APIError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(APIError):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(APIError):
    status, title, slug = 413, "Content Too Large", "payload-too-large"


class Unprocessable(APIError):
    status, title, slug = 422, "Unprocessable Content", "validation"


class TooManyRequests(APIError):
    status, title, slug = 429, "Too Many Requests", "rate-limited"

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(APIError):
    status, title, slug = 503, "Service Unavailable", "unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_body(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    instance: str | None = None,
    trace_id: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if trace_id:
        body["trace_id"] = trace_id
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return body


def problem_response(
    request: Request | None,
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    instance = trace_id = None
    if request is not None:
        instance = request.url.path
        trace_id = getattr(request.state, "request_id", None)
    body = problem_body(
        status,
        title,
        detail,
        slug=slug,
        instance=instance,
        trace_id=trace_id,
        errors=errors,
        extra=extra,
    )
    all_headers = dict(headers or {})
    if trace_id:
        # The 500 handler answers outside the request-id middleware, so it is set here too.
        all_headers.setdefault("X-Request-ID", trace_id)
    return JSONResponse(body, status_code=status, headers=all_headers, media_type=PROBLEM_JSON)


_STARLETTE_TITLES = {
    400: ("Bad Request", "bad-request"),
    401: ("Unauthorized", "unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("Not Found", "not-found"),
    405: ("Method Not Allowed", "method-not-allowed"),
    406: ("Not Acceptable", "not-acceptable"),
    409: ("Conflict", "conflict"),
    413: ("Content Too Large", "payload-too-large"),
    415: ("Unsupported Media Type", "unsupported-media-type"),
}


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field problems without echoing the rejected input (it may be a password)."""
    out = []
    for err in exc.errors():
        out.append(
            {
                "location": _location(err.get("loc", ())),
                "message": str(err.get("msg", "invalid")),
                "code": str(err.get("type", "invalid")),
            }
        )
    return out


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return problem_response(
        request,
        exc.status,
        exc.title,
        exc.detail,
        slug=exc.slug,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title, slug = _STARLETTE_TITLES.get(exc.status_code, ("Error", "http-error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else title
    if exc.status_code == 404:
        detail = "No resource at this path."
    return problem_response(request, exc.status_code, title, detail, slug=slug, headers=exc.headers or {})


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    if any(e["code"] == "json_invalid" for e in errors):
        return problem_response(
            request, 400, "Bad Request", "The request body is not valid JSON.", slug="bad-json"
        )
    return problem_response(
        request,
        422,
        "Unprocessable Content",
        "The request has invalid fields.",
        slug="validation",
        errors=errors,
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        request,
        503,
        "Service Unavailable",
        "The database is unavailable; try again shortly.",
        slug="unavailable",
        headers={"Retry-After": "5"},
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A statement that failed because its connection died (a database restart, a failover)
    is the database being unavailable, not a bug; one whose values the database cannot take
    came with the request (the rules in ``kit.inputs`` stop them first, this is the last
    stop); anything else is unexpected."""
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or _server_unavailable(exc)):
        return await _database_unavailable(request, exc)
    if isinstance(exc, DBAPIError) and sqlstate(exc) in _VALUE_SQLSTATES:
        log.warning("value refused by the database: SQLSTATE %s", sqlstate(exc))
        return problem_response(
            request,
            400,
            "Bad Request",
            "The request holds a value that cannot be stored or compared.",
            slug="bad-value",
        )
    return await _unexpected(request, exc)


# Data exceptions a request's values cause: a value asyncpg cannot encode for its parameter's
# type (22000, such as an int past INTEGER), text too long (22001), a number out of range
# (22003), a bad or overflowing date (22007, 22008), a NUL or untranslatable character (22021,
# 22P05). Others of the class, such as a division by zero, are bugs and stay 500s.
_VALUE_SQLSTATES = frozenset({"22000", "22001", "22003", "22007", "22008", "22021", "22P05"})


# SQLSTATEs of a server that cannot take the statement now: connection exceptions (08…),
# insufficient resources (53…, such as too many connections), operator intervention (57P…,
# such as starting up or shutting down).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def unavailable_sqlstate(sqlstate: object) -> bool:
    """Whether a PostgreSQL error code says the server cannot take statements now."""
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def sqlstate(exc: DBAPIError) -> object:
    """The PostgreSQL error code behind a driver's error (asyncpg's or psycopg's), if any."""
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def _server_unavailable(exc: DBAPIError) -> bool:
    return unavailable_sqlstate(sqlstate(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return problem_response(
        request, 500, "Internal Server Error", "An unexpected error occurred.", slug="internal"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)


def unprocessable_from(exc: ValidationError, location: str = "body") -> Unprocessable:
    """A 422 for a validation done inside a route (beyond what the signature declares)."""
    return Unprocessable(
        "The request has invalid fields.",
        errors=[
            {
                "location": ".".join([location, *(str(p) for p in err.get("loc", ()))]),
                "message": str(err.get("msg", "invalid")),
                "code": str(err.get("type", "invalid")),
            }
            for err in exc.errors()
        ],
    )
