"""Forwarding one request to the service that owns it, streaming both ways.

An upstream that refuses the connection gives 503 with Retry-After, one that does not answer in
time 504, one that breaks the protocol 502: always a problem+json, never a hang or a trace.
"""

from __future__ import annotations

import logging

import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from kit.errors import problem_response

log = logging.getLogger("gateway.proxy")

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


def _request_headers(request: Request) -> list[tuple[str, str]]:
    headers = [
        (k, v)
        for k, v in request.headers.items()
        if k.lower() not in HOP_BY_HOP and k.lower() != "x-request-id"
    ]
    headers.append(("x-request-id", request.state.request_id))
    client = request.client.host if request.client else ""
    forwarded_for = request.headers.get("x-forwarded-for")
    headers.append(("x-forwarded-for", f"{forwarded_for}, {client}" if forwarded_for else client))
    headers.append(("x-forwarded-proto", request.url.scheme))
    return headers


async def forward(request: Request, client: httpx.AsyncClient, base_url: str, service: str) -> Response:
    url = httpx.URL(base_url + request.url.path, query=request.url.query.encode())
    has_body = request.method in {"POST", "PUT", "PATCH", "DELETE"}
    upstream_request = client.build_request(
        request.method,
        url,
        headers=_request_headers(request),
        content=request.stream() if has_body else None,
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.TimeoutException:
        log.warning("upstream %s timed out", service)
        return problem_response(
            request,
            504,
            "Gateway Timeout",
            f"The {service} service did not answer in time.",
            slug="upstream-timeout",
        )
    except httpx.ConnectError:
        log.warning("upstream %s refused the connection", service)
        return problem_response(
            request,
            503,
            "Service Unavailable",
            f"The {service} service is unavailable; try again shortly.",
            slug="upstream-unavailable",
            headers={"Retry-After": "5"},
        )
    except httpx.HTTPError as exc:
        log.warning("upstream %s failed: %s", service, type(exc).__name__)
        return problem_response(
            request, 502, "Bad Gateway", f"The {service} service gave no valid answer.", slug="upstream-error"
        )
    headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=headers,
        background=BackgroundTask(upstream.aclose),
    )
