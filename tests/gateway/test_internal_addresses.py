"""No service's own address reaches a client: not in a redirect, not in a Location, Content-Location
or Link header, not in SCIM's resource addresses. A client learns the public address only."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.responses import Response

from gateway.proxy import InternalAddresses
from services.identity.settings import IdentitySettings
from tests.helpers import admin, auth, person
from tests.suite import build_suite

SERVICES = ("identity", "feed", "groups", "moderation")
SERVICE_HOSTS = tuple(f"{scheme}{name}" for name in SERVICES for scheme in ("http://", "//"))
SCIM = "/scim/v2"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def assert_names_no_service(resp: httpx.Response) -> None:
    for name, value in [*resp.headers.items(), ("body", resp.text)]:
        assert not any(host in value for host in SERVICE_HOSTS), (name, value)


async def scim_token(client: httpx.AsyncClient, root: str) -> str:
    created = await client.post(
        "/api/v1/admin/clients", json={"name": "HR", "scopes": ["scim"]}, headers=auth(root)
    )
    assert created.status_code == 201, created.text
    secret = created.json()
    resp = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": secret["client_id"],
            "client_secret": secret["client_secret"],
        },
    )
    token: str = resp.json()["access_token"]
    return token


def scim_user(user_name: str = "bjensen") -> dict[str, object]:
    return {
        "schemas": [CORE],
        "userName": user_name,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Barbara Jensen",
        "emails": [{"value": f"{user_name}@agency.example", "primary": True, "type": "work"}],
    }


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/posts/",
        "/api/v1/groups/",
        "/api/v1/me/",
        "/api/v1/timelines/home/",
        "/api/v1/personas/",
        "/.well-known/jwks.json/",
        "/api/v1/reports/",
        "/api/v1/me/notices/",
        "/api/v1/moderation/reports/",
    ],
)
async def test_a_trailing_slash_is_a_404_problem_not_a_redirect_to_the_service(suite, path):
    token, _ = await person(suite.client, "ada")
    resp = await suite.client.get(path, headers=auth(token))
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert "location" not in resp.headers
    assert_names_no_service(resp)


@pytest.mark.parametrize("path", ["/scim/v2/Users/", "/scim/v2/ServiceProviderConfig/"])
async def test_a_scim_path_with_a_trailing_slash_is_a_404_too(suite, path):
    resp = await suite.client.get(path)
    assert resp.status_code == 404
    assert "location" not in resp.headers
    assert_names_no_service(resp)


async def test_the_gateways_own_paths_do_not_redirect_either(suite):
    resp = await suite.client.get("/health/live/")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert "location" not in resp.headers


def _redirecting_service(location: str) -> FastAPI:
    """Stands in for feed: answers every path with the headers a careless service might send."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET"])
    async def answer(request: Request, path: str) -> Response:
        return Response(
            status_code=307,
            headers={
                "Location": location,
                "Content-Location": location,
                "Link": f'<{location}>; rel="next", </api/v1/posts?page=2>; rel="last"',
            },
        )

    return app


@pytest.mark.parametrize(
    ("sent", "seen"),
    [
        ("http://feed/api/v1/posts?cursor=a%2Fb#top", "/api/v1/posts?cursor=a%2Fb#top"),
        ("http://feed:80/api/v1/posts/1", "/api/v1/posts/1"),
        ("https://FEED/api/v1/posts/1", "/api/v1/posts/1"),  # behind a hop that says https
        ("//feed/api/v1/posts/1", "/api/v1/posts/1"),
        ("http://identity/api/v1/me", "/api/v1/me"),  # any service's address, not only the sender's
        ("http://feed", "/"),
        ("/api/v1/posts/1", "/api/v1/posts/1"),
        ("https://social.example.gov/api/v1/posts/1", "https://social.example.gov/api/v1/posts/1"),
    ],
)
async def test_an_upstream_header_naming_a_service_reaches_the_client_as_a_path_on_the_gateway(
    suite, sent, seen
):
    token, _ = await person(suite.client, "ada")
    suite.router.mount("feed", _redirecting_service(sent))
    resp = await suite.client.get("/api/v1/posts/1", headers=auth(token))
    assert resp.status_code == 307
    assert resp.headers["location"] == seen
    assert resp.headers["content-location"] == seen
    assert resp.headers["link"] == f'<{seen}>; rel="next", </api/v1/posts?page=2>; rel="last"'
    assert_names_no_service(resp)


def test_internal_addresses_compare_host_and_port_not_text():
    internal = InternalAddresses(["http://127.0.0.1:8001", "http://feed"])
    assert internal.relative("http://127.0.0.1:8001/scim/v2/Users/1") == "/scim/v2/Users/1"
    assert (
        internal.relative("http://127.0.0.1:8000/scim/v2/Users/1") == "http://127.0.0.1:8000/scim/v2/Users/1"
    )
    assert internal.relative("http://feed.example.gov/x") == "http://feed.example.gov/x"
    assert internal.relative("http://feed:bad/x") == "http://feed:bad/x"  # not an address at all
    assert internal.relative("mailto:feed@agency.example") == "mailto:feed@agency.example"


async def test_scim_names_its_resources_by_relative_references_when_no_public_address_is_set(suite):
    root, _ = await admin(suite)
    token = await scim_token(suite.client, root)
    # neither a forwarded host nor the Host itself moves SCIM's addresses
    spoofed = {**auth(token), "X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example"}
    created = await suite.client.post(f"{SCIM}/Users", json=scim_user(), headers=spoofed)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    assert created.headers["location"] == f"{SCIM}/Users/{user_id}"
    assert created.json()["meta"]["location"] == f"{SCIM}/Users/{user_id}"
    async with httpx.AsyncClient(transport=suite.router, base_url="http://identity") as direct:
        got = await direct.get(f"{SCIM}/Users/{user_id}", headers={**spoofed, "Host": "evil.example"})
    assert got.headers["location"] == f"{SCIM}/Users/{user_id}"
    assert_names_no_service(created)
    assert "evil.example" not in got.text


async def test_scim_names_its_resources_by_the_configured_public_address(database_urls):
    public = "https://social.agency.example.gov"
    async with build_suite(database_urls, identity={"public_url": public + "/"}) as suite:
        root, _ = await admin(suite)
        token = await scim_token(suite.client, root)
        created = await suite.client.post(f"{SCIM}/Users", json=scim_user(), headers=auth(token))
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        assert created.headers["location"] == f"{public}{SCIM}/Users/{user_id}"
        assert created.json()["meta"]["location"] == f"{public}{SCIM}/Users/{user_id}"
        listed = await suite.client.get(f"{SCIM}/Users", headers=auth(token))
        assert [u["meta"]["location"] for u in listed.json()["Resources"]] == [
            f"{public}{SCIM}/Users/{user_id}"
        ]
        config = await suite.client.get(f"{SCIM}/ServiceProviderConfig", headers=auth(token))
        assert config.json()["meta"]["location"] == f"{public}{SCIM}/ServiceProviderConfig"
        for path in ("ResourceTypes", "Schemas"):
            page = await suite.client.get(f"{SCIM}/{path}", headers=auth(token))
            locations = [r["meta"]["location"] for r in page.json()["Resources"]]
            assert locations and all(loc.startswith(f"{public}{SCIM}/{path}/") for loc in locations)
            assert_names_no_service(page)


@pytest.mark.parametrize("url", ["social.example.gov", "ftp://social.example.gov", "https://x.gov/?q=1"])
def test_the_public_address_must_be_an_http_url(url):
    with pytest.raises(ValidationError):
        IdentitySettings(internal_token="x", public_url=url)
