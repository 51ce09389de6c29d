"""A browser on another origin: the intranet widget, served by its own little server, signs in
and shows the home timeline through the real gateway (CORS), and Swagger UI at /docs signs in
with its Authorize dialog. Headless Debian Chromium driven by Playwright; no test here skips:
without a browser they fail. Marked ``browser``: `make test` leaves them out and
`make browser-test` installs Chromium and runs them."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.mailbox import confirm, wait_for_logged_token
from tests.processes import ROOT, Process, free_port, launched

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
PASSWORD = "correct horse battery staple"
POST = "Kick-off on Monday <b>bring cake</b>"


def ensure_chromium() -> Path:
    """Debian's chromium, which `make browser-test` installs (`make browser` alone too); a
    missing browser fails the test, never skips it."""
    assert CHROMIUM.exists(), "Chromium is missing: run `make browser-test` (it installs it)"
    return CHROMIUM


@dataclass
class Site:
    gateway: str
    widget: str
    output: list[str]


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
        cors = {"GATEWAY_CORS_ORIGINS": json.dumps([widget])}
        with launched(tmp_path_factory.mktemp("var"), env=cors) as suite:
            server.wait_until_answers(widget + "/index.html")
            yield Site(gateway=suite.url(), widget=widget, output=suite.output)
    finally:
        server.stop(timeout=10)


def _seed(site: Site, handle: str) -> str:
    """Registers someone and posts for them; returns their email."""
    email = f"{handle}@agency.example"
    with httpx.Client(base_url=site.gateway, timeout=30) as client:
        body = {"email": email, "password": PASSWORD, "handle": handle, "display_name": handle.title()}
        assert client.post("/api/v1/accounts", json=body).status_code == 202
        confirm(client, wait_for_logged_token(site.output, handle), PASSWORD)
        token = client.post(
            "/api/v1/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
        ).json()["access_token"]
        deadline = time.monotonic() + 60
        while True:  # the persona reaches feed through an event
            resp = client.post(
                "/api/v1/posts", json={"body": POST}, headers={"Authorization": f"Bearer {token}"}
            )
            if resp.status_code == 201 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert resp.status_code == 201, resp.text
    return email


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Browser, hosts: set[str]) -> Page:
    page = browser.new_page()
    page.on(
        "request",
        lambda request: hosts.add(urlsplit(request.url).netloc) if request.url.startswith("http") else None,
    )
    return page


def test_the_widget_on_another_origin_signs_in_and_shows_the_home_timeline(site, browser):
    email = _seed(site, "ada")
    hosts: set[str] = set()
    page = _page(browser, hosts)
    try:
        page.goto(f"{site.widget}/index.html?gateway={site.gateway}")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        expect(page.locator("#who")).to_have_text("Ada", timeout=30_000)
        post = page.locator("#timeline .post .body").first
        expect(post).to_have_text(POST, timeout=30_000)  # markup shown as text, not run
        assert page.locator("#timeline b").count() == 0
        assert page.locator("#error").text_content() == ""
    finally:
        page.close()
    assert hosts == {urlsplit(site.widget).netloc, urlsplit(site.gateway).netloc}


def test_the_widget_shows_the_gateways_problem_when_sign_in_fails(site, browser):
    page = _page(browser, set())
    try:
        page.goto(f"{site.widget}/index.html?gateway={site.gateway}")
        page.fill("#email", "nobody@agency.example")
        page.fill("#password", "not the password at all")
        page.click("#sign-in")
        expect(page.locator("#error")).not_to_be_empty(timeout=30_000)
        assert page.locator("#signed-in").is_hidden()
    finally:
        page.close()


def test_swagger_ui_works_offline_and_its_authorize_dialog_signs_in(site, browser):
    email = _seed(site, "bob")
    hosts: set[str] = set()
    page = _page(browser, hosts)
    try:
        page.goto(f"{site.gateway}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("govsocial API", timeout=30_000)
        page.click("button.authorize")
        page.fill("#oauth_username", email)
        page.fill("#oauth_password", PASSWORD)
        with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/token")) as token:
            page.click(".auth-btn-wrapper button.authorize")
        assert token.value.status == 200, token.value.text()
        expect(page.get_by_role("button", name="Remove authorization")).to_be_visible(timeout=10_000)
        page.get_by_role("button", name="Close", exact=True).click()
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
