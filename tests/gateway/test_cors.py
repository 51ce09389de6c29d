"""CORS for browser frontends: only configured origins, no credentials, preflights answered at
the gateway (docs/threats.md R5)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.cors import EXPOSED_HEADERS
from tests.helpers import auth, person
from tests.suite import Suite, build_suite

WIDGET = "https://intranet.agency.example"
PREFLIGHT = {
    "Origin": WIDGET,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key, If-Match",
}


@pytest.fixture
async def cors_suite(database_urls) -> AsyncIterator[Suite]:
    async with build_suite(database_urls, gateway={"cors_origins": [WIDGET + "/"]}) as built:
        yield built


async def test_preflight_from_a_listed_origin_is_answered_by_the_gateway(cors_suite):
    feed_calls = []
    original = cors_suite.router.apps["feed"]

    class Spy:
        async def handle_async_request(self, request):
            feed_calls.append(request)
            return await original.handle_async_request(request)

    cors_suite.router.apps["feed"] = Spy()  # type: ignore[assignment]
    resp = await cors_suite.client.options("/api/v1/posts", headers=PREFLIGHT)
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == WIDGET
    assert "POST" in resp.headers["access-control-allow-methods"]
    allowed = {h.strip() for h in resp.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-match"} <= allowed
    assert "origin" in resp.headers["vary"].lower()
    assert "access-control-allow-credentials" not in resp.headers
    assert feed_calls == []


async def test_an_actual_request_from_a_listed_origin_can_read_the_answer_and_its_headers(cors_suite):
    token, _ = await person(cors_suite.client, "ada")
    await cors_suite.deliver()
    resp = await cors_suite.client.get("/api/v1/timelines/home", headers={"Origin": WIDGET, **auth(token)})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == WIDGET
    exposed = {h.strip() for h in resp.headers["access-control-expose-headers"].split(",")}
    assert {"ETag", "Link", "Location", "Retry-After", "RateLimit", "RateLimit-Policy"} <= exposed
    assert "Idempotent-Replayed" in exposed  # a repeated create tells a browser app it was one
    assert "access-control-allow-credentials" not in resp.headers


async def test_every_header_the_api_documents_is_exposed_to_browser_apps(suite):
    document = (await suite.client.get("/openapi.json")).json()
    documented = {
        name.lower()
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
        for name in response.get("headers", {})
    }
    assert {"etag", "idempotent-replayed", "link", "location", "ratelimit"} <= documented
    assert documented <= {name.lower() for name in EXPOSED_HEADERS}


@pytest.mark.parametrize("origin", ["https://evil.example", "null", WIDGET + ".evil.example"])
async def test_other_origins_get_no_cors_headers(cors_suite, origin):
    preflight = await cors_suite.client.options("/api/v1/posts", headers={**PREFLIGHT, "Origin": origin})
    assert preflight.status_code == 403
    assert preflight.headers["content-type"] == "application/problem+json"
    assert "access-control-allow-origin" not in preflight.headers
    actual = await cors_suite.client.get("/api/v1/timelines/home", headers={"Origin": origin})
    assert actual.status_code == 401
    assert "access-control-allow-origin" not in actual.headers
    assert "origin" in actual.headers["vary"].lower()


async def test_a_preflight_asking_for_an_unlisted_header_is_refused(cors_suite):
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "X-Debug-Sudo"}
    resp = await cors_suite.client.options("/api/v1/posts", headers=headers)
    assert resp.status_code == 403
    assert "access-control-allow-origin" not in resp.headers


async def test_without_configured_origins_no_cors_header_is_ever_sent(suite):
    resp = await suite.client.options("/api/v1/posts", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in resp.headers
    resp = await suite.client.get("/api/v1/timelines/home", headers={"Origin": WIDGET})
    assert "access-control-allow-origin" not in resp.headers
