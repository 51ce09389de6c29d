"""The HTTP client the gateway forwards with, behind one small interface.

Production uses aiohttp: measured as the gateway's upstream client on loopback (bench, a bare
proxy in front of the floor app, 32 connections), httpx 0.28 kept about a fifth of aiohttp's
requests/s, spending its time in per-request import attempts and pool bookkeeping
(docs/decisions/0010-gateway-upstream-client.md). An injected httpx client is still accepted:
the in-process test suite routes the gateway to the services through an httpx transport.

Both take a request body whole or as an async iterable of chunks (an upload, streamed), and
report faults the same way: ``Unreachable`` (refused, no connection in time:
503), ``Broken`` (not a valid HTTP answer, or one that broke off: 502); timeouts are the
caller's ``asyncio.timeout`` (504).

``Upstreams`` holds the services behind the gateway: each one's address, its forwarding pool
and the httpx client of the gateway's own calls to it (signing keys, documents, readiness).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx
from yarl import URL

from gateway.routing import upstreams
from gateway.settings import GatewaySettings

# A request body: read whole, or (an upload, ``gateway.uploads``) chunks passed on as they
# arrive, with the Content-Length the caller puts in the headers or, without one, chunked.
Body = bytes | AsyncIterable[bytes] | None


class Unreachable(Exception):
    """No connection to the service (refused, or none free within the connect timeout)."""


class Broken(Exception):
    """The service's answer is not valid HTTP, or it broke off."""


class UpstreamResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    async def send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: Body
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise Broken(type(exc).__name__) from exc

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # read to the end: the connection is reused
        else:
            self._response.close()  # not read to the end: the connection is dropped


class AiohttpUpstream:
    """One connection pool for one service. The session is made on first use, inside the
    running event loop; it keeps no cookies (one jar would mix every user's)."""

    def __init__(self, *, max_connections: int, connect_timeout: float, keepalive_timeout: float) -> None:
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.keepalive_timeout = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections, keepalive_timeout=self.keepalive_timeout
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent"),
                timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout),
            )
        return self._session

    async def send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: Body
    ) -> UpstreamResponse:
        try:
            response = await self._open().request(
                method, URL(url, encoded=True), headers=headers, data=body, allow_redirects=False
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise Unreachable(type(exc).__name__) from exc
        except aiohttp.ServerTimeoutError as exc:
            raise TimeoutError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise Broken(type(exc).__name__) from exc
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TimeoutException as exc:
            raise TimeoutError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise Broken(type(exc).__name__) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxUpstream:
    """An httpx client given by the caller (the in-process test suite's transport)."""

    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self.client = client
        # The overall deadline is the caller's, so the read timeout stays off for long streams.
        self.timeout = httpx.Timeout(timeout, read=None)

    async def send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: Body
    ) -> UpstreamResponse:
        request = self.client.build_request(method, url, headers=headers, content=body, timeout=self.timeout)
        try:
            return _HttpxResponse(await self.client.send(request, stream=True))
        except (httpx.ConnectError, httpx.PoolTimeout) as exc:
            raise Unreachable(type(exc).__name__) from exc
        except httpx.TimeoutException as exc:
            raise TimeoutError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise Broken(type(exc).__name__) from exc

    async def aclose(self) -> None:
        return None  # the caller owns the client


@dataclass(frozen=True, slots=True)
class Target:
    """A service requests are forwarded to: its name, its address and its connection pool."""

    service: str
    base_url: str
    upstream: Upstream


class Upstreams:
    """The services behind the gateway, by name. One connection pool per service, so that a
    service that hangs cannot starve the others. Requests are forwarded through ``targets``
    (aiohttp, unless an httpx client is injected); ``clients`` (httpx) serve the gateway's own
    calls."""

    def __init__(
        self,
        targets: Mapping[str, Target],
        clients: Mapping[str, httpx.AsyncClient],
        *,
        owns_clients: bool,
    ) -> None:
        self.targets = dict(targets)
        self.clients = dict(clients)
        self.urls = {name: target.base_url for name, target in self.targets.items()}
        self.owns_clients = owns_clients

    @classmethod
    def from_settings(
        cls, settings: GatewaySettings, *, http_client: httpx.AsyncClient | None = None
    ) -> Upstreams:
        """The services the settings name; ``http_client``, when given, carries every call
        (the in-process test suite's transport) and stays the caller's to close."""
        urls = upstreams(settings)
        targets = {
            name: Target(name, url, _forwarding_pool(settings, http_client)) for name, url in urls.items()
        }
        clients = {name: http_client or _own_client(settings) for name in urls}
        return cls(targets, clients, owns_clients=http_client is None)

    @property
    def distinct_clients(self) -> list[httpx.AsyncClient]:
        """Each httpx client once (an injected one serves every service)."""
        return list({id(client): client for client in self.clients.values()}.values())

    async def readiness(self) -> dict[str, str]:
        """Each service's own readiness: ``ready``, ``not ready`` or ``unreachable``."""

        async def check(name: str) -> str:
            try:
                resp = await self.clients[name].get(self.urls[name] + "/health/ready", timeout=2)
            except httpx.HTTPError:
                return "unreachable"
            return "ready" if resp.status_code == 200 else "not ready"

        names = list(self.urls)
        results = await asyncio.gather(*(check(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def aclose(self) -> None:
        for target in self.targets.values():
            await target.upstream.aclose()
        if self.owns_clients:
            for client in self.clients.values():
                await client.aclose()


def _forwarding_pool(settings: GatewaySettings, http_client: httpx.AsyncClient | None) -> Upstream:
    if http_client is not None:
        return HttpxUpstream(http_client, timeout=settings.upstream_timeout_seconds)
    return AiohttpUpstream(
        max_connections=settings.upstream_max_connections,
        connect_timeout=settings.upstream_connect_timeout_seconds,
        keepalive_timeout=settings.upstream_keepalive_seconds,
    )


def _own_client(settings: GatewaySettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
        ),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
        ),
    )
