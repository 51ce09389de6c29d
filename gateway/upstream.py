"""The HTTP client the gateway forwards with, behind one small interface.

Production uses aiohttp: measured as the gateway's upstream client on loopback (bench, a bare
proxy in front of the floor app, 32 connections), httpx 0.28 kept about a fifth of aiohttp's
requests/s, spending its time in per-request import attempts and pool bookkeeping
(docs/decisions/0010-gateway-upstream-client.md). An injected httpx client is still accepted:
the in-process test suite routes the gateway to the services through an httpx transport.

Both adapters report faults the same way: ``Unreachable`` (refused, no connection in time:
503), ``Broken`` (not a valid HTTP answer, or one that broke off: 502); timeouts are the
caller's ``asyncio.timeout`` (504).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import httpx
from yarl import URL


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
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
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
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
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
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
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
