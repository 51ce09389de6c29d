"""Signing a person in through an app, at a terminal: the authorization-code flow with PKCE and
a loopback redirect (RFC 8252; decision 0035).

socialctl listens on 127.0.0.1, on a port the system picks, and sends the browser to the
authorization endpoint with that address as the redirect URI: an app registered with
``http://127.0.0.1/callback`` accepts it on any port (RFC 8252 §7.3). The person signs in and
chooses the persona on identity's own pages, so socialctl never sees the password; the browser
comes back to the listener with a code, which socialctl exchanges for tokens. What keeps the
code safe on a machine shared with other programs:

- PKCE S256: the verifier stays in this process until the exchange, so a code read on its way
  (it travels in a URL, and any local program may listen on a loopback port) is worth nothing.
- ``state``: a redirect that does not carry ours was not started by this command (an old tab, a
  forged link); it is refused and the listener waits on for the right one.
- ``iss`` (RFC 9207): the answer must name the issuer discovery named, so that a code another
  server issued is never sent to this one.
- The listener reads at most a few kilobytes of one request at a time, answers nothing but the
  callback path, and closes as soon as it has an answer.

Nothing here prints: the command passes ``show`` and ``warn`` for what the person reads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import secrets
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from socialctl.api import Api, ApiError

DISCOVERY = "/.well-known/oauth-authorization-server"
DEFAULT_REDIRECT_URI = "http://127.0.0.1/callback"
LOOPBACK_HOSTS = {"127.0.0.1": "127.0.0.1", "[::1]": "::1"}
DEFAULT_TIMEOUT = 300.0
MAX_REQUEST_HEAD = 8192  # a browser's GET with a code, state and iss fits in far less
READ_SECONDS = 10.0  # a connection that sends nothing is dropped, not waited on
CALLBACK_PARAMETERS = ("code", "state", "iss", "error", "error_description")


def challenge_of(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier: BASE64URL(SHA-256(verifier)), unpadded
    (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        """A random verifier of 86 characters of the unreserved alphabet (RFC 7636 §4.1 asks
        for 43 to 128), with its challenge."""
        verifier = secrets.token_urlsafe(64)
        return cls(verifier, challenge_of(verifier))


@dataclass(frozen=True)
class Loopback:
    """The redirect URI to listen on: ``http`` on a loopback IP literal, without a port (any
    free one, RFC 8252 §7.3) or with one (a fixed port the app registered)."""

    host: str  # as written in the URI: 127.0.0.1 or [::1]
    port: int  # 0: the system picks one
    path: str

    @classmethod
    def parse(cls, uri: str) -> Loopback:
        """Raises ValueError, with a sentence for the person, for anything else. ``localhost``
        is refused: RFC 8252 §8.3 prefers the literal, which no hosts file or resolver can
        point elsewhere, and only the literals match on any port."""
        parts = urlsplit(uri)
        host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
        if parts.scheme != "http" or host not in LOOPBACK_HOSTS:
            raise ValueError("the redirect URI must be http://127.0.0.1/… or http://[::1]/… (RFC 8252).")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("the redirect URI must have no query, fragment or user.")
        try:
            port = parts.port or 0
        except ValueError:
            raise ValueError("the redirect URI's port is not a port number.") from None
        return cls(host, port, parts.path)

    def uri(self, port: int) -> str:
        """The redirect URI with the port actually listened on."""
        return f"http://{self.host}:{port}{self.path}"


@dataclass(frozen=True)
class Callback:
    """What the browser brought back: a code, or an error (RFC 6749 §4.1.2)."""

    state: str | None = None
    code: str | None = None
    iss: str | None = None
    error: str | None = None
    error_description: str | None = None


def authorization_url(
    endpoint: str, *, app_id: str, redirect_uri: str, scope: str | None, state: str, challenge: str
) -> str:
    """The address the browser opens (RFC 6749 §4.1.1 with RFC 7636's challenge)."""
    query = {
        "response_type": "code",
        "client_id": app_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if scope:
        query["scope"] = scope
    separator = "&" if urlsplit(endpoint).query else "?"
    return endpoint + separator + urlencode(query)


def parse_callback(target: str, path: str) -> Callback | None:
    """The callback a request target carries (``/callback?code=…&state=…``); None when it is
    another path (a browser asks for /favicon.ico too) or repeats a parameter (RFC 6749 §3.1)."""
    parts = urlsplit(target)
    if (parts.path or "/") != (path or "/"):
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    if any(len(values) > 1 for values in query.values()):
        return None
    one = {name: query[name][0] for name in CALLBACK_PARAMETERS if name in query}
    return Callback(**one)


def _page(title: str, text: str) -> bytes:
    """A small page with no script, no asset and no link: the address bar holds the code until
    the tab is closed, and a page that loads nothing can leak it nowhere."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    ).encode()


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Content-Security-Policy: default-src 'none'\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class Listener:
    """The loopback HTTP server that receives the browser's redirect, once."""

    def __init__(self, loopback: Loopback, state: str, warn: Callable[[str], None]) -> None:
        self.loopback = loopback
        self.state = state
        self.warn = warn
        self.answer: asyncio.Future[Callback] | None = None
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Listener:
        self.answer = asyncio.get_running_loop().create_future()
        host = LOOPBACK_HOSTS[self.loopback.host]
        try:
            self.server = await asyncio.start_server(
                self._serve, host, self.loopback.port, limit=MAX_REQUEST_HEAD
            )
        except OSError as exc:
            raise ApiError(
                "Cannot listen for the browser", f"{host} port {self.loopback.port}: {exc}"
            ) from exc
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @property
    def redirect_uri(self) -> str:
        return self.loopback.uri(self.port)

    async def wait(self, within: float) -> Callback:
        """The browser's answer; ApiError when none came within ``within`` seconds."""
        assert self.answer is not None
        try:
            callback = await asyncio.wait_for(asyncio.shield(self.answer), within)
        except TimeoutError:
            raise ApiError(
                "Sign-in timed out", f"No answer from the browser within {within:g} s; try again."
            ) from None
        if self.server is not None:
            self.server.close()  # no second answer: the code is spent on the first
        return callback

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_SECONDS)
            writer.write(self._handle(head))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass  # not a browser's request, or one too big: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _handle(self, head: bytes) -> bytes:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request_line.partition(" ")
        target = rest.rpartition(" ")[0]
        callback = parse_callback(target, self.loopback.path) if method == "GET" else None
        if callback is None:
            return _response("404 Not Found", _page("Not found", "Nothing here."))
        if callback.state is None or not secrets.compare_digest(callback.state.encode(), self.state.encode()):
            self.warn("A redirect that socialctl did not start came to the listener; it was refused.")
            return _response(
                "400 Bad Request",
                _page(
                    "Not this sign-in",
                    "This answer does not belong to the sign-in socialctl is waiting for. "
                    "Use the address the terminal shows.",
                ),
            )
        assert self.answer is not None
        if self.answer.done():
            return _response("410 Gone", _page("Already answered", "You can close this tab."))
        self.answer.set_result(callback)
        if callback.error:
            return _response(
                "200 OK",
                _page(
                    "Sign-in not completed",
                    f"{callback.error_description or callback.error}. You can close this tab.",
                ),
            )
        return _response(
            "200 OK",
            _page(
                "Back to the terminal",
                "socialctl received the sign-in and finishes it there. You can close this tab.",
            ),
        )


def open_in_browser(url: str) -> None:
    """Opens ``url`` in a thread of its own: on a machine without a display, ``webbrowser``
    may run a text browser in the foreground, which must not stop the listener from answering
    it; a daemon thread never holds the command open either."""
    threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()


async def discover(api: Api) -> dict[str, Any]:
    """The authorization server's metadata (RFC 8414): its issuer and authorization endpoint."""
    metadata = await api.anonymous("GET", DISCOVERY)
    endpoint = metadata.get("authorization_endpoint") if isinstance(metadata, dict) else None
    if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("http", "https"):
        raise ApiError("No authorization endpoint", f"{api.config.url}{DISCOVERY} names none.")
    methods = metadata.get("code_challenge_methods_supported") or ["S256"]
    if "S256" not in methods:
        raise ApiError("No PKCE S256", "The authorization server does not offer S256.")
    result: dict[str, Any] = metadata
    return result


def check_issuer(callback: Callback, metadata: dict[str, Any]) -> None:
    """RFC 9207: where the server says it sends ``iss``, it must, and it must be the issuer."""
    issuer = metadata.get("issuer")
    required = bool(metadata.get("authorization_response_iss_parameter_supported"))
    if (callback.iss is None and required) or (callback.iss is not None and callback.iss != issuer):
        raise ApiError(
            "Wrong issuer", f"The answer came from {callback.iss or 'an unnamed issuer'}, not from {issuer}."
        )


async def sign_in(
    api: Api,
    app_id: str,
    *,
    loopback: Loopback,
    scope: str | None = None,
    within: float = DEFAULT_TIMEOUT,
    show: Callable[[str], None],
    warn: Callable[[str], None],
    browser: bool = True,
) -> dict[str, Any]:
    """The whole flow: discovery, the listener, the browser, the exchange. Returns the token
    endpoint's answer (``api.remember`` keeps it); raises ApiError for any refusal."""
    metadata = await discover(api)
    pkce, state = Pkce.new(), secrets.token_urlsafe(24)
    async with Listener(loopback, state, warn) as listener:
        redirect_uri = listener.redirect_uri
        url = authorization_url(
            metadata["authorization_endpoint"],
            app_id=app_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            challenge=pkce.challenge,
        )
        show(url)
        if browser:
            open_in_browser(url)
        callback = await listener.wait(within)
    if callback.error:
        raise ApiError("Sign-in not completed", f"{callback.error}: {callback.error_description or '-'}")
    check_issuer(callback, metadata)
    if not callback.code:
        raise ApiError("Sign-in not completed", "The browser came back without a code.")
    return await api.token(
        {
            "grant_type": "authorization_code",
            "code": callback.code,
            "redirect_uri": redirect_uri,
            "client_id": app_id,
            "code_verifier": pkce.verifier,
        }
    )
