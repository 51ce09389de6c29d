"""A browser on another origin: the intranet widget, served by its own little server, signs in
with the authorization-code flow and PKCE through identity's pages (it never sees a password),
shows the chosen persona and its home timeline through the real gateway (CORS), and stays
signed in and live for longer than its access token lives; Swagger UI at /docs signs in with
its Authorize dialog. Headless Debian Chromium driven by Playwright; no test here skips:
without a browser they fail. Marked ``browser``: `make test` leaves them out and
`make browser-test` installs Chromium and runs them.

The suite runs with 30-second access tokens (the shortest identity allows), so that the widget
has to refresh its token and reopen its stream within the test."""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Response, expect, sync_playwright

from tests.e2e.people import PASSWORD, Person, bearer, grant, sign_in
from tests.mailbox import confirm, wait_for_logged_token
from tests.processes import ROOT, Process, Running, free_port, launched

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
POST = "Kick-off on Monday <b>bring cake</b>"
TOKEN_SECONDS = 30
TOKEN_PATH = "/api/v1/auth/token"
# identity's pages (services/identity/pages.py)
SIGN_IN_BUTTON = "form button[type=submit][name=action][value=signin]"
ALLOW_BUTTON = "button[name=action][value=consent]"
DENY_BUTTON = "button[name=action][value=deny]"


def ensure_chromium() -> Path:
    """Debian's chromium, which `make browser-test` installs (`make browser` alone too); a
    missing browser fails the test, never skips it."""
    assert CHROMIUM.exists(), "Chromium is missing: run `make browser-test` (it installs it)"
    return CHROMIUM


@dataclass
class Site:
    gateway: str
    widget: str
    running: Running

    @property
    def output(self) -> list[str]:
        return self.running.output


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    ensure_chromium()
    widget_port = free_port()
    widget = f"http://127.0.0.1:{widget_port}"
    server = Process(
        [sys.executable, "-m", "http.server", str(widget_port), "--bind", "127.0.0.1"],
        name="widget server",
        cwd=ROOT / "examples" / "intranet-widget",
    ).start()
    try:
        env = {
            "GATEWAY_CORS_ORIGINS": json.dumps([widget]),
            "IDENTITY_ACCESS_TOKEN_SECONDS": str(TOKEN_SECONDS),
            # every sign-in of the module comes from one address: more than the default 20 a minute
            "GATEWAY_RATE_LIMITS": json.dumps({"auth": {"per_address": 1000}}),
        }
        with launched(tmp_path_factory.mktemp("var"), env=env) as suite:
            server.wait_until_answers(widget + "/index.html")
            yield Site(gateway=suite.url(), widget=widget, running=suite)
    finally:
        server.stop(timeout=10)


@pytest.fixture(scope="module")
def app_id(site: Site) -> str:
    """The widget registered by an administrator as a public app, its redirect URI the page's
    address."""
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        admin = Person(client, site.running, "admin")
        grant(site.running, admin, "admin")
        body = {
            "name": "Intranet widget",
            "kind": "public",
            "redirect_uris": [f"{site.widget}/"],
            "scopes": ["read", "write"],
        }
        resp = client.post("/api/v1/admin/apps", json=body, headers=admin.headers("professional"))
        assert resp.status_code == 201, resp.text
        assert resp.json().get("client_secret") is None  # a page in a browser keeps no secret
        return str(resp.json()["id"])


def _seed(site: Site, handle: str) -> str:
    """Registers someone (for Swagger UI's sign-in, the password grant) and posts for them;
    returns their email."""
    email = f"{handle}@agency.example"
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        body = {"email": email, "password": PASSWORD, "handle": handle, "display_name": handle.title()}
        assert client.post("/api/v1/accounts", json=body).status_code == 202
        confirm(client, wait_for_logged_token(site.output, handle), PASSWORD)
        _post(client, email, "professional", [POST])
    return email


def _post(client: httpx.Client, email: str, context: str, bodies: list[str]) -> list[str]:
    """Posts ``bodies`` in order as the persona of ``context`` (with a fresh token: they live 30
    seconds here), once feed knows the persona (it learns of it through an event); returns
    their ids."""
    headers = bearer(sign_in(client, email, context)["access_token"])
    ids = []
    for text in bodies:
        deadline = time.monotonic() + 60
        while True:
            resp = client.post("/api/v1/posts", json={"body": text}, headers=headers)
            if resp.status_code == 201 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert resp.status_code == 201, resp.text
        ids.append(str(resp.json()["id"]))
    return ids


def _follow(client: httpx.Client, reader: Person, persona_id: str) -> None:
    headers = bearer(sign_in(client, reader.email, "professional")["access_token"])
    deadline = time.monotonic() + 60
    while True:  # both personas reach feed through events
        resp = client.put(f"/api/v1/following/{persona_id}", headers=headers)
        if resp.status_code in (200, 201) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert resp.status_code in (200, 201), resp.text


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Browser, hosts: set[str]) -> Page:
    """A page in a context of its own (no cookie of another test's sign-in)."""
    page = browser.new_page()
    page.on(
        "request",
        lambda request: hosts.add(urlsplit(request.url).netloc) if request.url.startswith("http") else None,
    )
    return page


@dataclass
class Sent:
    """A request the browser sent, as the network saw it."""

    method: str
    url: str
    body: str
    kind: str  # Playwright's resource type: document, script, fetch, eventsource, …
    at: float  # time.monotonic()

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body).items()}


def _record(page: Page) -> list[Sent]:
    sent: list[Sent] = []
    page.on(
        "request",
        lambda r: sent.append(Sent(r.method, r.url, r.post_data or "", r.resource_type, time.monotonic())),
    )
    return sent


def _answers(page: Page) -> list[Response]:
    answers: list[Response] = []
    page.on("response", lambda response: answers.append(response))
    return answers


def _token_answers(page: Page) -> list[Response]:
    answers: list[Response] = []
    page.on("response", lambda r: answers.append(r) if urlsplit(r.url).path == TOKEN_PATH else None)
    return answers


def _open_widget(page: Page, site: Site, app_id: str) -> None:
    page.goto(f"{site.widget}/?{urlencode({'gateway': site.gateway, 'client_id': app_id})}")


def _to_consent(page: Page, site: Site, app_id: str, email: str) -> None:
    """From the widget to identity's sign-in page, and signed in there: the consent page."""
    _open_widget(page, site, app_id)
    page.click("#sign-in")
    page.wait_for_url(f"{site.gateway}/oauth/authorize?*", timeout=30_000)
    assert page.locator("input[type=password]").count() == 1  # the password is asked for here
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click(SIGN_IN_BUTTON)
    expect(page.locator(ALLOW_BUTTON)).to_be_visible(timeout=30_000)


def _sign_in(page: Page, site: Site, app_id: str, person: Person, context: str) -> None:
    """Signs in through the pages as ``person``'s persona of ``context``."""
    _to_consent(page, site, app_id, person.email)
    page.check(f"input[name=persona][value={context}]")
    page.click(ALLOW_BUTTON)
    page.wait_for_url(f"{site.widget}/*", timeout=30_000)


def _carries(sent: Sent, secret: str) -> bool:
    return any(s in sent.url or s in sent.body for s in (secret, quote_plus(secret)))


def _assert_nothing_kept(page: Page) -> None:
    """Tokens in memory only: the verifier and state are gone from sessionStorage, nothing is
    in localStorage or a cookie of the widget's origin, and the address holds no code."""
    assert page.evaluate("sessionStorage.length") == 0
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    query = parse_qs(urlsplit(page.url).query)
    assert "code" not in query
    assert "state" not in query


def test_the_widget_signs_in_through_the_pages_and_stays_live_past_its_token(site, browser, app_id):
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        reader, author = Person(client, site.running, "ada"), Person(client, site.running, "bob")
        _follow(client, reader, author.ids["professional"])
        *_, newest = _post(client, author.email, "professional", [f"Note {n}" for n in range(1, 21)] + [POST])
    hosts: set[str] = set()
    page = _page(browser, hosts)
    sent, answers = _record(page), _answers(page)
    try:
        _sign_in(page, site, app_id, reader, "professional")
        expect(page.locator("#who")).to_have_text("ada", timeout=30_000)
        signed_in = time.monotonic()  # the first token was issued before this: it ends before +30 s
        expect(page.locator("#context")).to_have_text("professional")
        posts = page.locator("#timeline .post .body")
        expect(posts.first).to_have_text(POST, timeout=30_000)  # markup shown as text, not run
        expect(posts).to_have_count(20)
        assert page.locator("#timeline b").count() == 0
        expect(page.locator("#more")).to_be_visible()
        expect(page.locator("#live")).to_contain_text("Live", timeout=30_000)
        assert page.locator("input[type=password]").count() == 0
        _assert_nothing_kept(page)
        page.evaluate("window.sameDocument = true")  # gone if the page reloads

        # Past the first token's lifetime: a post by someone else arrives live, and an older
        # page of the timeline loads, with the tokens the widget refreshed on its own.
        # (waiting in the browser, not in time.sleep, so its requests are seen as they are sent)
        page.wait_for_timeout(max(0.0, signed_in + TOKEN_SECONDS + 2 - time.monotonic()) * 1000)
        with httpx.Client(base_url=site.gateway, timeout=30) as client:
            _post(client, author.email, "professional", ["Said after the first token expired"])
        expect(posts.first).to_have_text("Said after the first token expired", timeout=30_000)
        page.click("#more")
        expect(posts).to_have_count(22, timeout=30_000)
        expect(posts.last).to_have_text("Note 1")
        assert page.evaluate("window.sameDocument") is True
        assert page.locator("#error").text_content() == ""
        assert page.locator("#signed-in").is_visible()
    finally:
        page.close()
    assert hosts == {urlsplit(site.widget).netloc, urlsplit(site.gateway).netloc}

    # The password went to identity's page, once, and nowhere else: never to the widget's
    # origin, never in a call the widget made, never to the token endpoint.
    (carrying,) = [s for s in sent if _carries(s, PASSWORD)]
    assert (carrying.method, carrying.kind) == ("POST", "document")
    assert carrying.url.startswith(f"{site.gateway}/oauth/authorize")
    token_requests = [s for s in sent if urlsplit(s.url).path == TOKEN_PATH]
    assert all(s.kind == "fetch" for s in token_requests)
    grants = [s.form()["grant_type"] for s in token_requests]
    assert grants[0] == "authorization_code"
    assert set(grants[1:]) == {"refresh_token"}  # it refreshed, and nothing else
    exchange = token_requests[0].form()
    assert exchange["client_id"] == app_id
    assert len(exchange["code_verifier"]) >= 43
    assert "password" not in exchange
    assert all(s.form()["client_id"] == app_id for s in token_requests)
    # refreshed on its own well before the first token expired (at 80% of its life), not when
    # the stream ended with it; so no call was refused for an expired token
    first_refresh = next(s for s in token_requests if s.form()["grant_type"] == "refresh_token")
    assert first_refresh.at - token_requests[0].at < TOKEN_SECONDS * 0.9
    calls = [r for r in answers if r.request.resource_type in ("fetch", "eventsource")]
    assert [r.url for r in calls if r.status == 401] == []

    # The stream opened after the newest post the page showed, and was reopened with a new
    # ticket from where it stood (here: no event came before the first token expired).
    streams = [parse_qs(urlsplit(s.url).query) for s in sent if urlsplit(s.url).path == "/api/v1/stream"]
    assert len(streams) >= 2
    assert all(s.kind == "eventsource" for s in sent if urlsplit(s.url).path == "/api/v1/stream")
    tickets = [query["ticket"][0] for query in streams]
    assert len(set(tickets)) == len(tickets)
    positions = [query["last_event_id"][0] for query in streams]
    assert positions[0] == f"{newest.replace('-', '')}.{'0' * 32}"  # no notification yet
    assert positions[1] == positions[0]


def test_the_personal_persona_chosen_at_consent_is_the_one_shown(site, browser, app_id):
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        cy = Person(client, site.running, "cy")
        _post(client, cy.email, "professional", ["At work: the quarterly plan"])
        _post(client, cy.email, "personal", ["At home: sourdough, day three"])
    page = _page(browser, set())
    answers = _token_answers(page)
    try:
        _sign_in(page, site, app_id, cy, "personal")
        expect(page.locator("#who")).to_have_text("cy at home", timeout=30_000)
        expect(page.locator("#context")).to_have_text("personal")
        posts = page.locator("#timeline .post .body")
        expect(posts.first).to_have_text("At home: sourdough, day three", timeout=30_000)
        expect(posts).to_have_count(1)  # nothing of the professional context
        answer: dict[str, Any] = answers[0].json()
        assert (answer["context"], answer["persona_id"]) == ("personal", cy.ids["personal"])
        _assert_nothing_kept(page)
    finally:
        page.close()


def _post_image(client: httpx.Client, email: str, description: str) -> str:
    """Uploads a small PNG as the professional persona of ``email``, waits for media to make it
    ready, and posts it; returns the media id."""
    headers = bearer(sign_in(client, email, "professional")["access_token"])
    image = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(image, "PNG")
    deadline = time.monotonic() + 60
    while True:  # media learns of the persona through an event
        resp = client.post(
            "/api/v1/media",
            files={"file": ("chart.png", image.getvalue(), "image/png")},
            data={"description": description},
            headers=headers,
        )
        if resp.status_code == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert resp.status_code == 202, resp.text
    media_id = str(resp.json()["id"])
    while (
        status := client.get(f"/api/v1/media/{media_id}", headers=headers).json()["status"]
    ) == "processing":
        assert time.monotonic() < deadline, "the upload was not processed"
        time.sleep(0.2)
    assert status == "ready"
    resp = client.post("/api/v1/posts", json={"body": "The chart", "media_ids": [media_id]}, headers=headers)
    assert resp.status_code == 201, resp.text
    return media_id


def test_the_widget_shows_a_post_s_image_through_a_signed_link(site, browser, app_id):
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        reader, author = Person(client, site.running, "eve"), Person(client, site.running, "fay")
        _follow(client, reader, author.ids["professional"])
        media_id = _post_image(client, author.email, "A blue chart")
    page = _page(browser, set())
    sent = _record(page)
    try:
        _sign_in(page, site, app_id, reader, "professional")
        image = page.locator(f"#timeline .post .media[data-media-id='{media_id}'] img")
        expect(image).to_have_attribute("alt", "A blue chart", timeout=30_000)
        page.wait_for_function(
            "(el) => el.complete && el.naturalWidth > 0", arg=image.element_handle(), timeout=30_000
        )
        assert image.evaluate("el => el.naturalWidth") == 64  # the preview of a small image keeps its size
        source = image.get_attribute("src") or ""
        assert "signature=" in source and "expires=" in source, source
        # the image is read through the signed link, never with the token in its address
        assert not any("access_token" in request.url for request in sent), sent
    finally:
        page.close()


def test_sign_out_revokes_the_refresh_token(site, browser, app_id):
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        dee = Person(client, site.running, "dee")
    page = _page(browser, set())
    answers = _token_answers(page)
    try:
        _sign_in(page, site, app_id, dee, "professional")
        expect(page.locator("#who")).to_have_text("dee", timeout=30_000)
        refresh_token = answers[-1].json()["refresh_token"]
        with page.expect_response(lambda r: urlsplit(r.url).path == "/api/v1/auth/revoke") as revoked:
            page.click("#sign-out")
        assert revoked.value.status == 200
        expect(page.locator("#login")).to_be_visible()
        assert page.locator("#timeline .post").count() == 0
        assert page.locator("#who").is_hidden()
    finally:
        page.close()
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        resp = client.post(
            TOKEN_PATH,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app_id},
        )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_grant"


def test_a_refused_refresh_signs_the_widget_out_cleanly(site, browser, app_id):
    """The grant is revoked elsewhere (here: its refresh token, as /me/sessions or an
    administrator would): at its next refresh the widget says the session ended and forgets
    everything."""
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        eve = Person(client, site.running, "eve")
    page = _page(browser, set())
    answers = _token_answers(page)
    try:
        _sign_in(page, site, app_id, eve, "professional")
        expect(page.locator("#who")).to_have_text("eve", timeout=30_000)
        with httpx.Client(base_url=site.gateway, timeout=30) as client:
            resp = client.post("/api/v1/auth/revoke", data={"token": answers[-1].json()["refresh_token"]})
        assert resp.status_code == 200, resp.text
        expect(page.locator("#login")).to_be_visible(timeout=(TOKEN_SECONDS + 10) * 1000)
        expect(page.locator("#error")).to_have_text("Your session has ended; please sign in again.")
        assert page.locator("#signed-in").is_hidden()
        assert page.locator("#timeline .post").count() == 0
        assert len(answers) == 2  # the exchange, and the one refused refresh
        assert answers[-1].status == 400
    finally:
        page.close()


def test_no_at_consent_comes_back_as_a_refusal(site, browser, app_id):
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        fay = Person(client, site.running, "fay")
    page = _page(browser, set())
    sent = _record(page)
    try:
        _to_consent(page, site, app_id, fay.email)
        page.click(DENY_BUTTON)
        page.wait_for_url(f"{site.widget}/*", timeout=30_000)
        expect(page.locator("#error")).to_have_text("You chose not to let this page sign in.", timeout=30_000)
        assert page.locator("#signed-in").is_hidden()
        _assert_nothing_kept(page)
        assert page.locator("#client-id").input_value() == app_id  # ready to try again
    finally:
        page.close()
    assert not [s for s in sent if urlsplit(s.url).path == TOKEN_PATH]


def test_an_answer_the_widget_did_not_ask_for_is_refused(site, browser, app_id):
    """A code planted in a link (login CSRF): no sign-in under way, or another state, and the
    widget exchanges nothing."""
    page = _page(browser, set())
    sent = _record(page)
    try:
        page.goto(f"{site.widget}/?code=gsc_planted&state=forged&iss=x")
        expect(page.locator("#error")).to_have_text(
            "This page did not ask for that sign-in; please sign in again.", timeout=30_000
        )
        assert page.locator("#signed-in").is_hidden()
        _assert_nothing_kept(page)
    finally:
        page.close()
    assert not [s for s in sent if urlsplit(s.url).path == TOKEN_PATH]


def test_swagger_ui_works_offline_and_its_authorize_dialog_signs_in(site, browser):
    email = _seed(site, "bob")
    hosts: set[str] = set()
    page = _page(browser, hosts)
    try:
        page.goto(f"{site.gateway}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("govsocial API", timeout=30_000)
        page.click("button.authorize")
        # the dialog offers the authorization-code flow and the password flow: use the latter's
        password_flow = page.locator(".auth-container", has=page.locator("#oauth_username"))
        password_flow.locator("#oauth_username").fill(email)
        password_flow.locator("#oauth_password").fill(PASSWORD)
        with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/token")) as token:
            password_flow.locator(".auth-btn-wrapper button.authorize").click()
        assert token.value.status == 200, token.value.text()
        expect(page.get_by_role("button", name="Remove authorization").first).to_be_visible(timeout=10_000)
        page.get_by_role("button", name="Close", exact=True).first.click()
        operation = page.locator("#operations-accounts-get_me")
        operation.locator(".opblock-summary").click()
        with page.expect_response(lambda r: r.url.endswith("/api/v1/me")) as me:
            operation.locator("button.execute").click()
        assert me.value.status == 200  # the token from the dialog was sent
    finally:
        page.close()
    assert hosts == {urlsplit(site.gateway).netloc}, "the docs page asked another host"


def test_redoc_renders_offline(site, browser):
    hosts: set[str] = set()
    page = _page(browser, hosts)
    try:
        page.goto(f"{site.gateway}/redoc")
        expect(page.locator("h1").first).to_contain_text("govsocial API", timeout=30_000)
    finally:
        page.close()
    assert hosts == {urlsplit(site.gateway).netloc}
