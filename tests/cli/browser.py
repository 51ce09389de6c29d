"""A person's browser, as much of one as identity's sign-in pages need: it opens the authorization
URL, fills the sign-in form (``email``, ``password``), chooses a persona on the consent page
(the radio ``persona``), presses a button (``action``), sends the cookies back, and stops at the
first redirect that leaves the pages: the app's redirect URI with the code."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden (and pre-filled) inputs
    radios: dict[str, list[str]] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value)

    def button(self, value: str) -> bool:
        return ("action", value) in self.buttons


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=attr.get("action", "")))
        elif tag == "input" and self.forms and attr.get("name"):
            form, kind = self.forms[-1], attr.get("type", "text")
            if kind == "radio":
                form.radios.setdefault(attr["name"], []).append(attr.get("value", ""))
            elif kind != "submit":
                form.fields[attr["name"]] = attr.get("value", "")
        elif tag == "button" and self.forms and attr.get("name"):
            self.forms[-1].buttons.append((attr["name"], attr.get("value", "")))


def forms(page: str) -> list[Form]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Browser:
    """``pages`` reaches identity's pages (keeps their cookies); ``seen`` is every page's URL."""

    pages: httpx.AsyncClient
    seen: list[str] = field(default_factory=list)

    async def sign_in(
        self,
        url: str,
        *,
        email: str,
        password: str,
        persona: str = "professional",
        decision: str = "consent",
    ) -> str:
        """Goes through the pages from ``url``; returns where they send the browser in the end."""
        response = await self.pages.get(url)
        for _ in range(8):
            here = str(response.url)
            self.seen.append(here)
            if response.is_redirect:
                target = urljoin(here, response.headers["location"])
                if _origin(target) != _origin(here) or "/oauth/" not in urlsplit(target).path:
                    return target  # leaving the pages: the app's redirect URI
                response = await self.pages.get(target)
                continue
            assert response.status_code in (200, 400), response.text
            found = forms(response.text)
            signin = next((f for f in found if f.button("signin")), None)
            consent = next((f for f in found if f.button(decision)), None)
            if signin is not None:
                data = {**signin.fields, "email": email, "password": password, "action": "signin"}
                form = signin
            elif consent is not None:
                data = {**consent.fields, "action": decision}
                if decision == "consent":
                    assert persona in consent.radios.get("persona", []), consent.radios
                    data["persona"] = persona
                form = consent
            else:
                raise AssertionError(f"no form to fill at {here}: {response.text[:500]}")
            response = await self.pages.post(
                urljoin(here, form.action), data=data, headers={"Origin": _origin(here)}
            )
        raise AssertionError(f"the pages never let go: {self.seen}")
