"""Swagger UI and ReDoc at the gateway, with no CDN: every page and asset comes from the gateway."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.helpers import PASSWORD, auth, register

EXTERNAL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+")


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_docs_pages_name_no_external_url_and_their_assets_are_served(suite, page):
    resp = await suite.client.get(page)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert EXTERNAL.findall(resp.text) == []
    parser = _Assets()
    parser.feed(resp.text)
    for url in parser.urls:
        assert url.startswith("/"), url
        asset = await suite.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0


async def test_the_docs_pages_forbid_the_browser_any_other_host(suite):
    for page in ("/docs", "/redoc"):
        policy = (await suite.client.get(page)).headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "connect-src 'self'" in policy
    bundle = (await suite.client.get("/docs/static/redoc.standalone.js")).text
    assert "cdn.redoc.ly/redoc/logo" not in bundle


async def test_swagger_ui_reads_the_merged_document_and_shows_no_outside_validator(suite):
    page = (await suite.client.get("/docs")).text
    assert "url: '/openapi.json'" in page
    assert '"validatorUrl": null' in page
    assert "/docs/oauth2-redirect" in page
    script = await suite.client.get("/docs/static/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in script.text


async def test_the_authorize_dialog_signs_in_with_the_password_flow_it_finds_in_the_document(suite):
    document = (await suite.client.get("/openapi.json")).json()
    token_url = document["components"]["securitySchemes"]["bearer"]["flows"]["password"]["tokenUrl"]
    email = await register(suite.client, "ada")
    # what Swagger UI posts for the password flow, with empty client fields
    form = {"grant_type": "password", "username": email, "password": PASSWORD, "scope": ""}
    resp = await suite.client.post(token_url, data=form)
    assert resp.status_code == 200, resp.text
    token = resp.json()
    assert token["token_type"].lower() == "bearer"
    me = await suite.client.get("/api/v1/me", headers=auth(token["access_token"]))
    assert me.status_code == 200


async def test_docs_can_be_switched_off(database_urls):
    from tests.suite import build_suite

    async with build_suite(database_urls, gateway={"docs_enabled": False}) as suite:
        assert (await suite.client.get("/docs")).status_code == 404
        assert (await suite.client.get("/redoc")).status_code == 404
        assert (await suite.client.get("/openapi.json")).status_code == 200
