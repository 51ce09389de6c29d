"""Forwarding one request to the service that owns it.

Every upstream fault becomes a problem+json, never a hang or a trace:

    refused connection, pool exhausted         503 + Retry-After
    no answer within upstream_timeout          504
    broken protocol, truncated or invalid      502
    body, an HTML (non-problem) 5xx page,
    an answer over upstream_max_response_bytes

The request body is read whole first (the body limit bounds it), so a body over the limit is a
413 before any service sees a byte. Answers with a Content-Length are read whole too: JSON
pages are small, and only a complete answer can still be turned into a 502. Server-sent event
streams and answers of unknown length are streamed through unbuffered, with the size cap and an
idle timeout enforced as they flow (a stream that breaks is cut, never silently completed).
Downloads (``application/zip``: records' export packages, decision 0033) are streamed too,
with their Content-Length kept and their own cap, ``upstream_max_download_bytes``: a package
of gigabytes passes without the gateway holding it. So are media's files and previews
(``download=True``, decision 0036) whatever their type, their 206 answers to a Range included,
and their 304 passes on without a body.

One request body is not read whole: an upload (``forward_upload``, ``gateway.uploads``) is
passed on as it arrives, under its own cap.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import anyio
from fastapi import Request
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic_core import from_json
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.uploads import UploadBody, arrived_too_slowly, declared_length, too_large
from gateway.upstream import Body, Broken, Target, Unreachable, Upstream, UpstreamResponse
from kit.addresses import CLIENT_ADDRESS_HEADER, sign_client_address
from kit.errors import PROBLEM_JSON, problem_response
from kit.i18n import render

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
GATEWAY_SET = {"x-request-id", "x-forwarded-for", CLIENT_ADDRESS_HEADER}
# Single-value fields the gateway's own server writes on every answer (RFC 9110 §5.3: they must
# not repeat): its Date stands for the message it sends (§6.6.1), and no process advertises a
# Server. The service's copies are dropped.
ANSWER_SET = {"date", "server"}
ERROR_PAGE_LIMIT = 64 * 1024
DOWNLOADS = frozenset({"application/zip"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
URL_SAFE = "/%!$&'()*+,;=:@-._~"


@dataclass(frozen=True, slots=True)
class Limits:
    timeout: float
    max_response_bytes: int
    stream_idle_timeout: float | None
    max_download_bytes: int = 20 * 1024**3


class InternalAddresses:
    """The services' own addresses, which no header a client receives may name: a ``Location``,
    ``Content-Location`` or ``Link`` target on one of them becomes a path on the gateway (which
    routes it to the same service). Relative references and other hosts pass unchanged."""

    _LINK_TARGET = re.compile(r"<([^>]*)>")

    def __init__(self, urls: Iterable[str]) -> None:
        self.authorities = frozenset(
            (parts.hostname or "", parts.port or _DEFAULT_PORTS.get(parts.scheme, 80))
            for parts in map(urlsplit, urls)
        )

    def _is_internal(self, parts: SplitResult) -> bool:
        if not parts.netloc:
            return False
        try:
            port = parts.port
        except ValueError:
            return False
        # A service behind a TLS-terminating hop may name its address with either scheme.
        ports = {port} if port is not None else set(_DEFAULT_PORTS.values())
        return any((parts.hostname or "", p) in self.authorities for p in ports)

    def relative(self, value: str) -> str:
        parts = urlsplit(value)
        if not self._is_internal(parts):
            return value
        return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))

    def links(self, value: str) -> str:
        return self._LINK_TARGET.sub(lambda m: f"<{self.relative(m.group(1))}>", value)

    def clean(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        cleaned = []
        for name, value in headers:
            lower = name.lower()
            if lower in {"location", "content-location"}:
                value = self.relative(value)
            elif lower == "link":
                value = self.links(value)
            cleaned.append((name, value))
        return cleaned


_DEFAULT_PORTS = {"http": 80, "https": 443}


class UpstreamFault(Exception):
    """A service's fault, answered as a problem: ``detail`` is a template of ``kit.i18n``, with
    the name of the service (and the status it answered) in ``params``."""

    def __init__(
        self, status: int, detail: str, slug: str, params: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(render(detail, params))
        self.status = status
        self.detail = detail
        self.slug = slug
        self.params = dict(params or {})


def _request_headers(
    request: Request, client_address: str, address_secret: str | None
) -> list[tuple[str, str]]:
    """The client's headers, except those the gateway alone sets: the request id, and the
    client's address as the gateway resolved it (one X-Forwarded-For entry, and signed for
    identity when a secret is shared), so nothing a client writes there reaches a service."""
    headers = [
        (k, v)
        for k, v in request.headers.items()
        if k.lower() not in HOP_BY_HOP and k.lower() not in GATEWAY_SET
    ]
    headers.append(("x-request-id", request.state.request_id))
    headers.append(("x-forwarded-for", client_address))
    if address_secret is not None:
        signed = sign_client_address(address_secret, client_address, time.time())
        headers.append((CLIENT_ADDRESS_HEADER, signed))
    headers.append(("x-forwarded-proto", request.scope.get("scheme", "http")))
    return headers


async def _send(
    request: Request,
    upstream: Upstream,
    url: str,
    body: Body,
    headers: list[tuple[str, str]],
    service: str,
    tracer: trace.Tracer | None,
) -> UpstreamResponse:
    """Sends the request upstream; when the gateway traces, inside a client span whose W3C
    ``traceparent`` goes along (a client's own trace headers are replaced by it: their child),
    so the service's span joins the gateway's trace."""
    if tracer is None:
        return await upstream.send(request.method, url, headers, body)
    attributes = {"http.request.method": request.method, "server.address": service}
    with tracer.start_as_current_span(
        request.method, kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        names = {name.lower() for name in carrier}
        headers = [(k, v) for k, v in headers if k.lower() not in names] + list(carrier.items())
        answer = await upstream.send(request.method, url, headers, body)
        span.set_attribute("http.response.status_code", answer.status)
        return answer


def _target(scope: Scope) -> str:
    """The path and query exactly as the client sent them (percent-encoded, never decoded and
    re-encoded), with any byte that is not URL-safe escaped."""
    raw = scope.get("raw_path") or scope["path"].encode()
    path = quote(raw.split(b"?", 1)[0], safe=URL_SAFE)
    query = quote(scope.get("query_string", b""), safe=URL_SAFE + "?")
    return f"{path}?{query}" if query else path


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class Forwarder:
    """Forwards requests to their service, with what every forwarded request shares: the
    limits, the services' own addresses to hide, the secret the client's address is signed
    with and the tracer (None when the gateway does not trace)."""

    __slots__ = ("address_secret", "internal", "limits", "tracer")

    def __init__(
        self,
        limits: Limits,
        internal: InternalAddresses,
        *,
        address_secret: str | None,
        tracer_provider: TracerProvider | None,
    ) -> None:
        self.limits = limits
        self.internal = internal
        self.address_secret = address_secret
        self.tracer = tracer_provider.get_tracer("gateway.proxy") if tracer_provider is not None else None

    async def forward(
        self,
        request: Request,
        target: Target,
        client_address: str,
        *,
        download: bool = False,
        upload: UploadBody | None = None,
        content_length: int | None = None,
    ) -> Response:
        """The service's answer to ``request``, or the problem+json of its fault; the client's
        address goes along as the gateway resolved it. ``download``: the answer is a file,
        streamed through with its length (media's files and previews). ``upload``: the body,
        passed on as it arrives (``forward_upload``), and its declared ``content_length``."""
        body: Body = upload
        if upload is None and request.method in BODY_METHODS:
            body = await request.body()
        headers = _request_headers(request, client_address, self.address_secret)
        if content_length is not None:
            headers.append(("content-length", str(content_length)))
        service, limits = target.service, self.limits
        url = target.base_url + _target(request.scope)
        try:
            try:
                async with asyncio.timeout(limits.timeout) as deadline:
                    if upload is not None:
                        upload.deadline = deadline  # pushed on as the body arrives
                    answer = await _send(request, target.upstream, url, body, headers, service, self.tracer)
            except Unreachable as exc:
                raise UpstreamFault(
                    503,
                    "The {service} service is unavailable; try again shortly.",
                    "upstream-unavailable",
                    params={"service": service},
                ) from exc
            except TimeoutError as exc:
                if upload is not None and upload.waiting:  # on the client, not the service
                    return arrived_too_slowly(request)
                raise UpstreamFault(
                    504,
                    "The {service} service did not answer in time.",
                    "upstream-timeout",
                    params={"service": service},
                ) from exc
            except Broken as exc:
                raise UpstreamFault(
                    502,
                    "The {service} service gave no valid answer.",
                    "upstream-error",
                    params={"service": service},
                ) from exc
            finally:
                if upload is not None:
                    upload.deadline = None
            return await _respond(answer, service, limits, self.internal, download)
        except UpstreamFault as fault:
            if upload is None or not upload.broken:  # a broken upload is not the service's fault
                log.warning("upstream %s: %s (%s)", service, fault.slug, fault.__cause__)
            retry = {"Retry-After": "5"} if fault.status == 503 else None
            return problem_response(
                request,
                fault.status,
                _TITLES[fault.status],
                fault.detail,
                slug=fault.slug,
                headers=retry,
                params=fault.params,
            )

    async def forward_upload(
        self, request: Request, target: Target, client_address: str, max_bytes: int
    ) -> Response:
        """An upload: its body passed on as it arrives, under ``max_bytes`` (``gateway.uploads``).
        Its Content-Length goes along when the client gave one, so that the service can refuse
        an upload over its quota before reading it."""
        declared = declared_length(request)
        if declared is not None and declared > max_bytes:
            return too_large(request, max_bytes)
        body = UploadBody(request, max_bytes=max_bytes, timeout=self.limits.timeout)
        try:
            response: Response | None = await self.forward(
                request, target, client_address, upload=body, content_length=declared
            )
        except ClientDisconnect:
            # In process, the service's app may raise what the cut body raised into it.
            if not body.broken:
                raise
            response = None
        if body.broken:
            if isinstance(response, UpstreamStream):
                await response.upstream.aclose()
            if body.client_gone:
                log.info("upload to %s broke off: the client left", target.service)
            return body.refusal(request)
        assert response is not None
        return response


_TITLES = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


async def _read_all(upstream: UpstreamResponse, service: str, limits: Limits, cap: int) -> bytes:
    chunks, size = [], 0
    try:
        async with asyncio.timeout(limits.timeout):
            async for chunk in upstream.chunks():
                size += len(chunk)
                if size > cap:
                    raise UpstreamFault(
                        502,
                        "The {service} service's answer is too large.",
                        "upstream-too-large",
                        params={"service": service},
                    )
                chunks.append(chunk)
    except TimeoutError as exc:
        raise UpstreamFault(
            504,
            "The {service} service did not finish its answer.",
            "upstream-timeout",
            params={"service": service},
        ) from exc
    except Broken as exc:
        raise UpstreamFault(
            502, "The {service} service's answer broke off.", "upstream-error", params={"service": service}
        ) from exc
    finally:
        await upstream.aclose()
    return b"".join(chunks)


def _header_pairs(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every end-to-end header of an upstream answer but those the gateway writes itself
    (``ANSWER_SET``), a repeated one as often as it came: each ``Set-Cookie`` is a cookie of its
    own and cannot be joined with commas as other headers can. aiohttp's headers (a multidict)
    yield every pair; httpx's only through ``multi_items``."""
    multi_items = getattr(headers, "multi_items", None)
    pairs: Iterable[tuple[str, str]] = multi_items() if callable(multi_items) else headers.items()
    return [(k, v) for k, v in pairs if k.lower() not in HOP_BY_HOP and k.lower() not in ANSWER_SET]


def _with_headers(response: Response, headers: list[tuple[str, str]]) -> None:
    """Adds ``headers`` to ``response`` as a list, so that a repeated one stays repeated."""
    response.raw_headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers)


async def _respond(
    upstream: UpstreamResponse,
    service: str,
    limits: Limits,
    internal: InternalAddresses,
    download: bool = False,
) -> Response:
    headers = internal.clean(_header_pairs(upstream.headers))
    content_type = upstream.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if upstream.status >= 500 and media != PROBLEM_JSON:
        await _read_all(upstream, service, limits, ERROR_PAGE_LIMIT * 16)
        raise UpstreamFault(
            502,
            "The {service} service failed ({status}).",
            "upstream-error",
            params={"service": service, "status": upstream.status},
        )
    if media == "text/event-stream":
        return UpstreamStream(
            upstream, headers, service, limits.max_response_bytes, limits.stream_idle_timeout
        )
    declared = upstream.headers.get("content-length")
    if download and upstream.status == 304:
        # Not modified: no body, whatever length the file itself has.
        await upstream.aclose()
        not_modified = Response(status_code=304)
        _with_headers(not_modified, headers)
        return not_modified
    if (download and upstream.status in (200, 206)) or (media in DOWNLOADS and upstream.status == 200):
        if declared is not None and (not declared.isdigit() or int(declared) > limits.max_download_bytes):
            await upstream.aclose()
            raise UpstreamFault(
                502,
                "The {service} service's answer is too large.",
                "upstream-too-large",
                params={"service": service},
            )
        return UpstreamStream(
            upstream, headers, service, limits.max_download_bytes, limits.timeout, keep_length=True
        )
    if declared is None:
        return UpstreamStream(upstream, headers, service, limits.max_response_bytes, limits.timeout)
    try:
        length = int(declared)
    except ValueError:
        length = -1
    if length < 0 or length > limits.max_response_bytes:
        await upstream.aclose()
        raise UpstreamFault(
            502,
            "The {service} service's answer is too large.",
            "upstream-too-large",
            params={"service": service},
        )
    content = await _read_all(upstream, service, limits, limits.max_response_bytes)
    encoded = upstream.headers.get("content-encoding", "identity").lower() != "identity"
    if content and _is_json(content_type) and not encoded:
        try:  # pydantic-core's parser: a quarter cheaper than json's on a page of posts
            from_json(content)
        except ValueError as exc:
            raise UpstreamFault(
                502, "The {service} service sent invalid JSON.", "upstream-error", params={"service": service}
            ) from exc
    response = Response(content, status_code=upstream.status)
    _with_headers(response, headers)
    return response


class UpstreamStream(Response):
    """Passes an upstream body through as it arrives. If the upstream breaks off, stalls past
    ``idle_timeout`` or passes ``max_bytes``, the response is cut without its final chunk, so the
    client sees a broken answer rather than a complete-looking short one. ``keep_length`` passes
    the upstream's Content-Length on (a download), so that a cut is also a short body."""

    def __init__(
        self,
        upstream: UpstreamResponse,
        headers: list[tuple[str, str]],
        service: str,
        max_bytes: int,
        idle_timeout: float | None,
        *,
        keep_length: bool = False,
    ) -> None:
        super().__init__(status_code=upstream.status)
        _with_headers(self, headers)
        self.upstream = upstream
        self.service = service
        self.max_bytes = max_bytes
        self.idle_timeout = idle_timeout
        self.keep_length = keep_length

    async def _chunks(self) -> AsyncIterator[bytes]:
        iterator = self.upstream.chunks().__aiter__()
        size = 0
        while True:
            async with asyncio.timeout(self.idle_timeout):
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    return
            size += len(chunk)
            if size > self.max_bytes:
                raise UpstreamFault(502, "The answer is too large.", "upstream-too-large")
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        declared = self.upstream.headers.get("content-length")
        if self.keep_length and declared is not None:
            headers.append((b"content-length", declared.encode("latin-1")))

        async def stream() -> None:
            await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
            try:
                async for chunk in self._chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (UpstreamFault, TimeoutError, Broken) as exc:
                log.warning("stream from %s cut: %s", self.service, type(exc).__name__)
                return  # the server closes the connection: the response stays incomplete
            except OSError:
                return  # the client left
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            async with anyio.create_task_group() as group:

                async def run_then_stop(job: Callable[[], Awaitable[None]]) -> None:
                    await job()
                    group.cancel_scope.cancel()

                group.start_soon(run_then_stop, stream)
                await run_then_stop(until_disconnect)
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()
