"""The HTTP side: one authenticated client of the gateway, its error type and its list walker.

    ApiError            any answer that is not a success, or no answer at all
     └── NotSignedIn    no token in the configuration file

``client_factory`` builds every ``httpx.AsyncClient`` the commands use; tests replace it to
route requests to an in-process suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import httpx

from socialctl.config import Config

RETRY_STATUSES = frozenset({429, 503})
CONNECT_ATTEMPTS = 3
MAX_RETRY_AFTER = 120.0
MAX_THROTTLED_SECONDS = 600.0
RENEW_MARGIN_SECONDS = 30.0
USER_AGENT = "socialctl/0.1"
MAX_PAGE = 100  # the API's largest page
# An idle connection is dropped after this long: well before the servers close it themselves
# (uvicorn's keep-alive, 5 s, as the launcher and the deployments run it). At the very moment
# a server closes an idle connection, a request sent on it is lost, and throttled requests
# waiting out a 5-second window would otherwise wake just then.
KEEPALIVE_EXPIRY = 2.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# What a request on a connection the server closed meanwhile ends in: no answer at all.
CONNECTION_CLOSED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def default_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(30.0, connect=5.0),
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(
            max_connections=64, max_keepalive_connections=64, keepalive_expiry=KEEPALIVE_EXPIRY
        ),
    )


ClientFactory = Callable[[str], httpx.AsyncClient]
client_factory: ClientFactory = default_client


def make_client(base_url: str) -> httpx.AsyncClient:
    return client_factory(base_url)


class ApiError(Exception):
    """An RFC 9457 problem (or a SCIM error, a transport failure, or a sign-in the browser
    did not complete) in printable form."""

    def __init__(
        self,
        title: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.title = title
        self.detail = detail
        self.status = status
        self.errors = errors or []

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        phrase = response.reason_phrase or "Error"
        if not isinstance(body, dict):
            return cls(phrase, response.text[:200] or None, status=response.status_code)
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        # problem+json has title/detail; SCIM errors have detail/scimType; OAuth adds error_description
        title = str(body.get("title") or phrase)
        detail = body.get("detail") or body.get("error_description")
        if body.get("scimType"):
            detail = f"{detail} ({body['scimType']})" if detail else str(body["scimType"])
        return cls(title, str(detail) if detail else None, status=response.status_code, errors=errors)

    def lines(self) -> list[str]:
        head = f"{self.title} ({self.status})" if self.status else self.title
        out = [f"{head}: {self.detail}" if self.detail and self.detail != self.title else head]
        for error in self.errors:
            where = error.get("location") or error.get("field") or ""
            message = error.get("message") or error.get("detail") or ""
            out.append(f"  {where}: {message}" if where else f"  {message}")
        return out


class NotSignedIn(ApiError):
    def __init__(self) -> None:
        super().__init__("Not signed in", "Run `socialctl login` first.", status=401)


def replayable(method: str, headers: Mapping[str, str] | None) -> bool:
    """Whether sending the request twice does what sending it once does: an idempotent method,
    or a POST with an Idempotency-Key, whose second answer is the first one's."""
    return method.upper() in IDEMPOTENT_METHODS or "idempotency-key" in httpx.Headers(headers or {})


def retry_after(response: httpx.Response, attempt: int) -> float:
    """Seconds to wait before trying again: the answer's Retry-After (seconds or an HTTP date),
    else exponential back-off with jitter; never more than MAX_RETRY_AFTER."""
    value = response.headers.get("retry-after")
    seconds: float | None = None
    if value:
        try:
            seconds = float(value)
        except ValueError:
            with contextlib.suppress(TypeError, ValueError):
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    if seconds is None:
        seconds = min(2.0**attempt, 30.0) * (0.5 + random.random() / 2)  # noqa: S311 - jitter
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


class Api:
    """The gateway, with the configuration's credentials: renews the token when it expires
    (a client asks again with its secret, a person with the refresh token, and with the app's
    id when they signed in through an app) and retries 429 and 503 answers after Retry-After."""

    def __init__(
        self,
        config: Config,
        *,
        on_renew: Callable[[Config], None] | None = None,
        attempts: int = 6,
        max_throttled_seconds: float = MAX_THROTTLED_SECONDS,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.client = make_client(config.url)
        self.on_renew = on_renew
        self.attempts = attempts
        self.max_throttled_seconds = max_throttled_seconds
        self.sleep = sleep
        self._renewing = asyncio.Lock()

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def token(self, grant: Mapping[str, str]) -> dict[str, Any]:
        """POST /api/v1/auth/token with a grant's form fields; the JSON answer."""
        response = await self._send("POST", "/api/v1/auth/token", data=dict(grant))
        if response.is_error:
            raise ApiError.from_response(response)
        body: dict[str, Any] = response.json()
        return body

    async def anonymous(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request without credentials (discovery), retried as every request is; error
        answers raise ApiError. The JSON body."""
        response = await self._send(method, path, **kwargs)
        if response.is_error:
            raise ApiError.from_response(response)
        return response.json()

    def remember(self, answer: Mapping[str, Any]) -> None:
        self.config.access_token = str(answer["access_token"])
        self.config.expires_at = time.time() + float(answer.get("expires_in") or 300)
        if answer.get("refresh_token"):
            self.config.refresh_token = str(answer["refresh_token"])
        if answer.get("persona_id"):
            self.config.persona_id = str(answer["persona_id"])
        if answer.get("context"):
            self.config.persona = str(answer["context"])
        if answer.get("scope") is not None and (self.config.client_id or self.config.app_id):
            self.config.scope = str(answer["scope"])

    async def renew(self, failed_token: str | None) -> None:
        async with self._renewing:
            if self.config.access_token != failed_token:
                return  # another request renewed it meanwhile (refresh tokens rotate: ask once)
            if self.config.client_id and self.config.client_secret:
                grant = {
                    "grant_type": "client_credentials",
                    "client_id": self.config.client_id,
                    "client_secret": self.config.client_secret,
                }
                if self.config.scope:
                    grant["scope"] = self.config.scope
            elif self.config.refresh_token and self.config.app_id:
                # an app's grant names the app, and keeps the persona chosen at consent
                grant = {
                    "grant_type": "refresh_token",
                    "refresh_token": self.config.refresh_token,
                    "client_id": self.config.app_id,
                }
            elif self.config.refresh_token:
                grant = {"grant_type": "refresh_token", "refresh_token": self.config.refresh_token}
                if self.config.persona:
                    grant["persona"] = self.config.persona
            else:
                raise ApiError("Session expired", "Run `socialctl login` again.", status=401)
            try:
                self.remember(await self.token(grant))
            except ApiError as exc:
                raise ApiError(
                    "Session expired", f"{exc.detail or exc.title} Run `socialctl login` again.", status=401
                ) from exc
            if self.on_renew is not None:
                self.on_renew(self.config)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Sends until an answer other than 429 or 503. A 503 is retried ``attempts`` times in
        all; a 429 as long as the API asks, up to ``max_throttled_seconds`` of waiting for this
        request: a throttled row of a bulk import is late, not failed, however many other
        requests win the next window first. A request whose connection closed without an
        answer is sent once more if sending it twice is harmless (``replayable``): the server
        may have closed an idle connection just as the request left."""
        attempt, throttles, throttled = 0, 0, 0.0
        resent = False
        while True:
            try:
                response = await self.client.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # never sent, so safe to send again, but a CLI should not hang on a wrong URL
                if attempt + 1 >= min(self.attempts, CONNECT_ATTEMPTS):
                    raise ApiError("Cannot reach the API", f"{self.config.url}: {exc}") from exc
                await self.sleep(0.5 * 2**attempt)
                attempt += 1
                continue
            except CONNECTION_CLOSED as exc:
                if resent or not replayable(method, kwargs.get("headers")):
                    raise ApiError("No answer from the API", f"{self.config.url}: {exc!r}") from exc
                resent = True  # on a new connection: the pool has dropped the closed one
                continue
            except httpx.TransportError as exc:
                raise ApiError("No answer from the API", f"{self.config.url}: {exc!r}") from exc
            if response.status_code not in RETRY_STATUSES:
                return response
            if response.status_code == 429:
                wait = retry_after(response, throttles)
                if throttled + wait > self.max_throttled_seconds:
                    return response
                throttles, throttled = throttles + 1, throttled + wait
            else:
                if attempt + 1 >= self.attempts:
                    return response
                wait = retry_after(response, attempt)
                attempt += 1
            await self.sleep(wait)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request; the response whatever its status (see ``call``)."""
        if not self.config.signed_in:
            raise NotSignedIn()
        if self.config.expires_at is not None and self.config.expires_at - RENEW_MARGIN_SECONDS < time.time():
            await self.renew(self.config.access_token)
        extra = kwargs.pop("headers", {})
        for renewed in (False, True):
            token = self.config.access_token
            headers = {**extra, "Authorization": f"Bearer {token}"}
            response = await self._send(method, path, headers=headers, **kwargs)
            if response.status_code != 401 or renewed:
                return response
            await self.renew(token)
        raise AssertionError("unreachable")

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated request whose error answers raise ApiError; the JSON body or None."""
        response = await self.request(method, path, **kwargs)
        if response.is_error:
            raise ApiError.from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Every item of a list, following ``next_cursor`` page by page (``limit`` to a page,
        the API's largest page by default)."""
        query: dict[str, Any] = {**(params or {}), "limit": limit or MAX_PAGE}
        while True:
            page = await self.call("GET", path, params=query)
            for item in page.get("items", []):
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    async def collect(
        self, path: str, params: Mapping[str, Any] | None = None, *, most: int | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a list, or its first ``most`` (no page beyond them is asked for)."""
        if most is None:
            return [item async for item in self.pages(path, params)]
        items: list[dict[str, Any]] = []
        async with contextlib.aclosing(self.pages(path, params, limit=min(most, MAX_PAGE))) as pages:
            async for item in pages:
                items.append(item)
                if len(items) >= most:
                    break
        return items
