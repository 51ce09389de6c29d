"""A browser's part in the authorization-code flow, for the tests: reading the sign-in and
consent pages' forms (html.parser, as a browser would find them), submitting them with one of
their buttons, following the pages' redirects; and the app's part: its registration, a PKCE
verifier, an authorization request and what comes back to its redirect URI."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from kit.timeutil import utcnow
from services.identity.apps import challenge_of
from services.identity.models import App
from tests.suite import Suite

AUTHORIZE = "/oauth/authorize"
REDIRECT = "https://board.agency.example/callback"
LOOPBACK = "http://127.0.0.1/callback"


async def make_app(
    suite: Suite,
    *,
    redirect_uris: Sequence[str] = (REDIRECT, LOOPBACK),
    scopes: Sequence[str] = ("read", "write"),
    name: str = "Team board",
    revoked: bool = False,
) -> str:
    """An app as an administrator registers it (inserted: the admin API is another change's)."""
    app_id = "app_" + secrets.token_hex(8)
    async with suite.identity.state.database.sessionmaker() as session:
        session.add(
            App(
                id=app_id,
                name=name,
                kind="public",
                redirect_uris=list(redirect_uris),
                scopes=list(scopes),
                revoked_at=utcnow() if revoked else None,
            )
        )
        await session.commit()
    return app_id


def browser(suite: Suite, base_url: str = "http://gateway") -> httpx.AsyncClient:
    """A browser of its own (its own cookies), reaching the suite through the gateway."""
    return httpx.AsyncClient(transport=suite.router, base_url=base_url)


def follow(resp: httpx.Response) -> str:
    """Where a 303 sends the browser, resolved as the browser resolves it."""
    assert resp.status_code == 303, resp.text
    return str(resp.url.join(resp.headers["location"]))


def set_cookies(resp: httpx.Response) -> dict[str, str]:
    """The answer's Set-Cookie headers by cookie name."""
    return {value.split("=", 1)[0]: value for value in resp.headers.get_list("set-cookie")}


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    radios: dict[str, list[str]] = field(default_factory=dict)
    checked: dict[str, str] = field(default_factory=dict)

    def actions(self) -> list[str]:
        return [value for name, value in self.buttons if name == "action"]


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.labels: set[str] = set()
        self.inputs: list[dict[str, str]] = []
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._form)
        elif tag == "label" and "for" in a:
            self.labels.add(a["for"])
        elif tag == "input":
            self.inputs.append(a)
            if self._form is None or "name" not in a:
                return
            kind = a.get("type", "text")
            if kind == "radio":
                self._form.radios.setdefault(a["name"], []).append(a.get("value", ""))
                if "checked" in a:
                    self._form.checked[a["name"]] = a.get("value", "")
            else:
                self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self._form is not None and "name" in a:
            self._form.buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def parse(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def forms(html: str) -> list[Form]:
    return parse(html).forms


def form_for(html: str, action: str) -> Form:
    """The form that has a button for ``action`` (signin, sso, consent, deny, signout)."""
    found = [f for f in forms(html) if action in f.actions()]
    assert len(found) == 1, (action, html)
    return found[0]


def submission(html: str, action: str, **values: str) -> dict[str, str]:
    """What a browser sends when the ``action`` button is pressed, with ``values`` typed in."""
    form = form_for(html, action)
    return {**form.fields, **form.checked, "action": action, **values}


@dataclass
class Pkce:
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        return challenge_of(self.verifier)


def authorize_query(client_id: str, redirect_uri: str, pkce: Pkce, **extra: Any) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "read write",
        "state": secrets.token_urlsafe(16),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return {k: v for k, v in query.items() if v is not None}


def authorize_url(client_id: str, redirect_uri: str, pkce: Pkce, **extra: Any) -> str:
    return f"{AUTHORIZE}?{urlencode(authorize_query(client_id, redirect_uri, pkce, **extra))}"


def returned(location: str, redirect_uri: str) -> dict[str, str]:
    """The parameters the app receives at ``redirect_uri`` (which ``location`` must be)."""
    base, _, query = location.partition("?")
    assert base == redirect_uri.split("?")[0], location
    values = parse_qs(query, keep_blank_values=True)
    assert all(len(v) == 1 for v in values.values()), location
    return {k: v[0] for k, v in values.items()}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
