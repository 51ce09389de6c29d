"""A stand-in for the media service, for the gateway's tests of uploads and files: the same
paths and the same HTTP behaviour at the edges the gateway handles (a streamed upload body,
Range, ETag and If-None-Match, signed links, a file's headers), and nothing of media's rules.
It writes down what reached it, so a test can tell what the gateway forwarded.

In process it is mounted under the host ``media`` of the suite's router; as a process:

    uvicorn tests.gateway.media_stub:create_app --factory --port PORT

``GET /_state`` answers what it saw; ``POST /_reset`` forgets it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# The one stored file: 1 MB of every byte value, so any range of it is easy to check.
FILE = bytes(range(256)) * 4096
ETAG = '"' + hashlib.sha256(FILE).hexdigest()[:32] + '"'
GOOD_SIGNATURE = "good"
FORWARDED = ("range", "if-none-match", "if-range", "authorization", "content-length", "transfer-encoding")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _problem(status: int, title: str, slug: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "type": f"https://errors.govsocial.example/{slug}",
        "title": title,
        "status": status,
        "detail": title,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def create_app() -> Starlette:
    state: dict[str, Any] = {"uploads": [], "requests": []}

    def seen(request: Request) -> None:
        state["requests"].append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": {name: request.headers[name] for name in FORWARDED if name in request.headers},
            }
        )

    async def upload(request: Request) -> Response:
        seen(request)
        digest, received, chunks = hashlib.sha256(), 0, 0
        record: dict[str, Any] = {
            "content_length": request.headers.get("content-length"),
            "chunked": request.headers.get("transfer-encoding") == "chunked",
            "complete": False,
        }
        state["uploads"].append(record)
        try:
            async for chunk in request.stream():
                if chunk:
                    digest.update(chunk)
                    received += len(chunk)
                    chunks += 1
                    record.update(received=received, chunks=chunks)
        except ClientDisconnect:
            record.update(received=received, chunks=chunks)
            return _problem(400, "The upload broke off.", "broke-off")
        record.update(received=received, chunks=chunks, complete=True, sha256=digest.hexdigest())
        answer = {"id": "m1", "status": "processing", "size": received, "sha256": digest.hexdigest()}
        return JSONResponse(
            answer, status_code=202, headers={"Location": f"{request.base_url}api/v1/media/m1"}
        )

    async def file(request: Request) -> Response:
        seen(request)
        query = request.query_params
        if "expires" in query and "signature" in query:
            if query["signature"] != GOOD_SIGNATURE:
                return _problem(403, "The link's signature is not valid.", "bad-signature")
        elif "authorization" not in request.headers:
            return _problem(401, "This operation needs a bearer token.", "unauthorized")
        media_id, variant = request.path_params["id"], request.path_params["variant"]
        content_type = "application/json" if media_id == "notjson" else "application/pdf"
        headers = {
            "ETag": ETAG,
            "Accept-Ranges": "bytes",
            "Cache-Control": "private, max-age=60",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"attachment; filename*=UTF-8''{variant}.pdf",
        }
        if request.headers.get("if-none-match") == ETAG:
            return Response(status_code=304, headers=headers)
        wanted = request.headers.get("range")
        if wanted and request.headers.get("if-range", ETAG) == ETAG:
            match = _RANGE.match(wanted)
            start, end = (match.group(1), match.group(2)) if match else ("", "")
            if match and start and int(start) < len(FILE):
                first, last = int(start), min(int(end) if end else len(FILE) - 1, len(FILE) - 1)
                if first <= last:
                    headers["Content-Range"] = f"bytes {first}-{last}/{len(FILE)}"
                    return Response(FILE[first : last + 1], 206, headers=headers, media_type=content_type)
            return _problem(
                416,
                "Range Not Satisfiable",
                "range-not-satisfiable",
                {"Content-Range": f"bytes */{len(FILE)}"},
            )
        return Response(FILE, 200, headers=headers, media_type=content_type)

    async def state_(request: Request) -> Response:
        return JSONResponse(state)

    async def reset(request: Request) -> Response:
        state["uploads"].clear()
        state["requests"].clear()
        return Response(status_code=204)

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    async def document(request: Request) -> Response:
        return JSONResponse(
            {"openapi": "3.1.0", "info": {"title": "media stub", "version": "0"}, "paths": {}}
        )

    return Starlette(
        routes=[
            Route("/api/v1/media", upload, methods=["POST"]),
            Route("/api/v1/media/{id}/{variant:str}", file, methods=["GET"]),
            Route("/_state", state_),
            Route("/_reset", reset, methods=["POST"]),
            Route("/health/ready", ready),
            Route("/health/live", ready),
            Route("/openapi.json", document),
        ]
    )
