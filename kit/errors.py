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
and any unexpected exception (a generic 500 that never shows a trace). The database's errors
have handlers of their own in ``kit.db_errors``: this module imports no database library, so
a process without a database (the gateway) loads none. ``PROBLEM_SCHEMA`` is the one OpenAPI
schema of the body every process publishes.

Every problem answers in the language ``Accept-Language`` asks for, English or French
(``kit.i18n``, docs/i18n.md): a detail is written in English, as a template with its values
in ``params`` when it has some, and its title and detail are translated as it is rendered.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit.i18n import ENGLISH, load, negotiate, render, translate, with_language_headers

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://govsocial.dev/problems/"

log = logging.getLogger("kit.errors")

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "trace_id": {"type": "string"},
        "error": {
            "type": "string",
            "description": "The token endpoint's RFC 6749 §5.2 error code.",
        },
        "error_description": {
            "type": "string",
            "description": "The token endpoint's RFC 6749 §5.2 description, in English (ASCII).",
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}
"""The body ``problem_body`` writes, as the services' and the gateway's OpenAPI documents name
it (``#/components/schemas/Problem``). A member added to one must be added to the other:
tests/kit/test_errors.py checks every body against it."""


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
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = detail or self.title
        self.params = dict(params or {})
        self.detail = render(self.template, self.params)
        super().__init__(self.detail)
        if title is not None:
            self.title = title
        if slug is not None:
            self.slug = slug
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def problem(
        self, *, instance: str | None = None, trace_id: str | None = None, language: str = ENGLISH
    ) -> dict[str, Any]:
        """This error's problem+json body, for code that answers outside the app's handlers
        (pure-ASGI middleware): ``language`` from ``kit.i18n.scope_language``, and the answer's
        headers from ``kit.i18n.language_headers``."""
        return problem_body(
            self.status,
            self.title,
            self.template,
            slug=self.slug,
            instance=instance,
            trace_id=trace_id,
            errors=self.errors,
            extra=self.extra,
            params=self.params,
            language=language,
        )


class BadRequest(APIError):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(APIError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(
        self,
        detail: str | None = None,
        *,
        error: str | None = "invalid_token",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        challenge = f'Bearer error="{error}"' if error else "Bearer"
        super().__init__(
            detail or "A valid bearer token is required.",
            headers={"WWW-Authenticate": challenge},
            params=params,
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

    def __init__(
        self, detail: str | None = None, *, retry_after: int, params: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, params=params)


class ServiceUnavailable(APIError):
    status, title, slug = 503, "Service Unavailable", "unavailable"

    def __init__(
        self, detail: str | None = None, *, retry_after: int = 5, params: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, params=params)


class HTTPProblem(StarletteHTTPException):
    """One of the family above raised as Starlette's HTTP error, by pure-ASGI code that fails
    a request the app is already answering: an app that renders Starlette's errors in a format
    of its own (identity's SCIM paths) still does, and the problem+json handler renders the
    error itself, its template translated."""

    def __init__(self, error: APIError) -> None:
        super().__init__(error.status, error.detail, error.headers or None)
        self.error = error


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
    params: Mapping[str, Any] | None = None,
    language: str = ENGLISH,
) -> dict[str, Any]:
    """The body of a problem in ``language``: ``title`` and ``detail`` (a template, with
    ``params``) translated; ``type``, ``errors`` and ``extra`` as given."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": translate(title, language),
        "status": status,
        "detail": translate(detail, language, params),
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
    params: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The problem answer to ``request``, in the language it asks for (``detail`` a template
    with ``params`` when it has values)."""
    instance = trace_id = None
    language = ENGLISH
    if request is not None:
        instance = request.url.path
        trace_id = getattr(request.state, "request_id", None)
        language = negotiate(request.headers.get("accept-language"))
    body = problem_body(
        status,
        title,
        detail,
        slug=slug,
        instance=instance,
        trace_id=trace_id,
        errors=errors,
        extra=extra,
        params=params,
        language=language,
    )
    all_headers = with_language_headers(headers or {}, language)
    if trace_id:
        # The 500 handler answers outside the request-id middleware, so it is set here too.
        all_headers.setdefault("X-Request-ID", trace_id)
    return JSONResponse(body, status_code=status, headers=all_headers, media_type=PROBLEM_JSON)


# Starlette's own HTTP errors (and code that raises them) are titled as the family above.
_STARLETTE_TITLES = {
    **{
        error.status: (error.title, error.slug)
        for error in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge)
    },
    405: ("Method Not Allowed", "method-not-allowed"),
    406: ("Not Acceptable", "not-acceptable"),
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
        exc.template,
        slug=exc.slug,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
        params=exc.params,
    )


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, HTTPProblem):
        return await _api_error(request, exc.error)
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


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return problem_response(
        request, 500, "Internal Server Error", "An unexpected error occurred.", slug="internal"
    )


def install_error_handlers(app: FastAPI) -> None:
    load()  # the catalogues, read once now rather than at the first French answer
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    # Every app of a process that uses SQLAlchemy (a service, or a test's own app on a
    # database) renders the database's errors too. A process that never loaded it, the
    # gateway, can raise none of them, and does not load it for their handlers.
    if "sqlalchemy" in sys.modules:
        from kit.db_errors import install_database_error_handlers

        install_database_error_handlers(app)


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
