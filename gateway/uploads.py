"""Uploads: the one request body the gateway does not read whole (decision 0036).

``POST /api/v1/media`` carries a file of up to 25 MB. Every other body is read whole before it
is forwarded (``gateway.proxy``), under ``max_body_size`` (1 MB): cheap for API pages, and a
body over the limit is a 413 before any service sees a byte. Holding 25 MB per upload in the
gateway would let a few concurrent uploads take its memory, so this one body is passed on
chunk by chunk as the client sends it, under its own cap, ``upload_max_bytes``:

- a ``Content-Length`` over the cap is a 413 before anything is forwarded; one within it is
  forwarded, so media can refuse an upload over its quota before reading it;
- a body without a length that passes the cap as it arrives (chunked) is cut: the
  service sees the connection break mid-body, as when a client goes away, and the client gets
  the 413;
- the upstream timeout counts from the last chunk passed on, not from the start: a large file
  from a slow client is not a 504. A client that sends nothing for that long gets a 408.

kit's body limit (``max_body_size``) lets this one route through untouched (``UNBOUNDED``,
given to ``kit.middleware.BodyLimitMiddleware``): the cap is applied here, as the body flows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from gateway.routing import UPLOAD
from kit.errors import problem_response

# The (method, path) pairs kit's body limit leaves to this module.
UNBOUNDED = frozenset({("POST", UPLOAD)})


class BodyCut(ClientDisconnect):
    """Raised into the upstream's side of an upload that passed the cap: to the service it is
    a client that went away (in process, its ``receive`` raises it; over HTTP, aiohttp drops the
    connection mid-body)."""


def declared_length(request: Request) -> int | None:
    """The upload's Content-Length (None when chunked); the server has already refused one
    that is not a number."""
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


def too_large(request: Request, max_bytes: int) -> Response:
    """The 413 of an upload over the cap. ``Connection: close``: the rest of the body is not
    read."""
    return problem_response(
        request,
        413,
        "Content Too Large",
        "An upload may carry at most {limit} bytes.",
        params={"limit": max_bytes},
        slug="payload-too-large",
        headers={"Connection": "close"},
    )


def broke_off(request: Request) -> Response:
    """The answer to a client that went away mid-upload (no one reads it; the access log does)."""
    return problem_response(
        request, 400, "Bad Request", "The upload broke off before its end.", slug="upload-broke-off"
    )


def arrived_too_slowly(request: Request) -> Response:
    return problem_response(
        request,
        408,
        "Request Timeout",
        "The upload stalled: nothing arrived in time.",
        slug="upload-timeout",
        headers={"Connection": "close"},
    )


class UploadBody:
    """An upload's body as an async iterable of chunks, read from the client as the upstream
    client (aiohttp, or httpx in process) asks for the next one. It records how it ended
    (``cut`` over the cap, ``client_gone``) and whether it was waiting on the client, and pushes
    the forwarding deadline on with each chunk (``deadline``, set by the forwarder while it
    waits for the answer)."""

    __slots__ = ("client_gone", "cut", "deadline", "max_bytes", "received", "request", "timeout", "waiting")

    def __init__(self, request: Request, *, max_bytes: int, timeout: float) -> None:
        self.request = request
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.received = 0
        self.cut = False
        self.client_gone = False
        self.waiting = False
        self.deadline: asyncio.Timeout | None = None

    @property
    def broken(self) -> bool:
        return self.cut or self.client_gone

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        stream = self.request.stream().__aiter__()
        while True:
            self.waiting = True
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                break
            except ClientDisconnect:
                self.client_gone = True
                raise
            finally:
                self.waiting = False
            if not chunk:
                continue
            self.received += len(chunk)
            if self.received > self.max_bytes:
                self.cut = True
                raise BodyCut()
            self._extend()
            yield chunk
        self._extend()  # the whole body is on its way: the answer is due within the timeout

    def _extend(self) -> None:
        deadline = self.deadline
        if deadline is not None:
            # An expiring or finished deadline cannot move; the forwarder is then done waiting.
            with contextlib.suppress(RuntimeError):
                deadline.reschedule(asyncio.get_running_loop().time() + self.timeout)

    def refusal(self, request: Request) -> Response:
        """The client's answer once the body broke: 413 over the cap, else the client left."""
        return too_large(request, self.max_bytes) if self.cut else broke_off(request)
