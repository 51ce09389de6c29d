"""What the gateway forwards, and what it answers itself, in process (docs/threats.md I1, I10, X1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from starlette.requests import Request

from gateway.proxy import InternalAddresses, Limits, _respond
from gateway.routing import request_path
from tests.helpers import auth, person


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/posts/l%C3%84%15%C2%94%C3%B0-/pin",  # control characters, once decoded
        "/api/v1/posts/%3F%5Cabc",  # an encoded '?' stays part of the path
        "/api/v1/personas/%E0%A5%A7%E0%A5%A8",  # digits of another script
        "/api/v1/personas/a%0Ab",  # a newline, which Starlette's own path convertor does not match
    ],
)
async def test_a_path_reaches_the_service_as_the_client_encoded_it(suite, path):
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    through_gateway = await suite.client.get(path, headers=auth(token))
    service = "feed" if path.startswith("/api/v1/posts") else "identity"
    direct = await suite.client.get(f"http://{service}{path}", headers=auth(token))
    assert through_gateway.status_code == direct.status_code
    assert through_gateway.status_code in {404, 405, 422}
    assert through_gateway.headers["content-type"] == "application/problem+json"


async def test_a_scim_path_with_a_newline_gets_scims_own_answer(suite):
    resp = await suite.client.get("/scim/v2/Users/W%0A~")
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/scim+json"


@pytest.mark.parametrize(
    "path",
    # httpx removes literal dot segments before sending; encoded ones arrive and are decoded
    ["/scim/v2/%2e%2e/%2e%2e/api/v1/me", "/api/v1/posts/%2E/x", "/api/v1/auth/%2e%2e/me"],
)
async def test_dot_segments_are_not_followed(suite, path):
    resp = await suite.client.get(path)
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("method", "path"), [("OPTIONS", "/api/v1/me"), ("PUT", "/api/v1/timelines/home")])
async def test_an_undeclared_method_gets_405_with_the_methods_the_service_allows(suite, method, path):
    token, _ = await person(suite.client, "ada")
    resp = await suite.client.request(method, path, headers=auth(token))
    assert resp.status_code == 405
    assert resp.headers["allow"] == "GET"
    assert resp.headers["content-type"] == "application/problem+json"


async def test_a_body_over_the_limit_is_413_problem_json(suite):
    token, _ = await person(suite.client, "ada")
    resp = await suite.client.post("/api/v1/posts", content=b"x" * 1_100_000, headers=auth(token))
    assert resp.status_code == 413
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["status"] == 413


async def test_an_unknown_prefix_is_404_without_asking_any_service(suite):
    resp = await suite.client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.json()["detail"] == "No resource at this path."


async def test_405_names_every_documented_method_of_the_path(suite):
    token, persona_id = await person(suite.client, "ada")
    await suite.client.get("/openapi.json")  # the gateway learns the document
    resp = await suite.client.request("PUT", f"/api/v1/personas/{persona_id}", headers=auth(token))
    assert resp.status_code == 405
    assert resp.headers["allow"] == "GET, PATCH"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/posts",
        "/api/v1/posts/a?b#c\\d",
        "//api/v1/x",
        "/api/v1/é/ü",
        "/api/v1/%2e%2e/x",
        "/api/v1/ /x",
    ],
)
@pytest.mark.parametrize("host", [b"gw.example", b"gw.example:8443", b"x/.well-known/jwks.json?", None])
def test_the_gateway_reads_the_path_as_the_request_url_does(path: str, host: bytes | None) -> None:
    """The gateway routes by ``request_path`` (not building the whole URL); it must read what
    ``request.url.path`` reads, whatever the path and the Host header."""
    headers = [(b"host", host)] if host is not None else []
    scope = {"type": "http", "scheme": "http", "path": path, "query_string": b"q=1", "headers": headers}
    scope["server"] = ("127.0.0.1", 8000)
    assert request_path(scope) == Request(scope).url.path


class _Answer:
    """A service's answer as the gateway's upstream clients hand it over (``gateway.upstream``)."""

    def __init__(self, headers: Mapping[str, str], body: bytes) -> None:
        self.status = 200
        self.headers = headers
        self.body = body

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.body

    async def aclose(self) -> None:
        return None


def _aiohttp_headers(pairs: list[tuple[str, str]]) -> Mapping[str, str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


@pytest.mark.parametrize("headers", [httpx.Headers, _aiohttp_headers], ids=["httpx", "aiohttp"])
@pytest.mark.parametrize("length", [True, False], ids=["read-whole", "streamed"])
async def test_the_gateway_copies_every_header_but_the_services_date_and_server(
    headers: Callable[[list[tuple[str, str]]], Mapping[str, str]], length: bool
) -> None:
    """RFC 9110 §5.3: Date and Server are single-value fields, and the gateway's own server
    writes a Date of its own (and no Server): the service's are not copied, whatever their
    case; everything else is, a repeated field as often as it came."""
    pairs = [
        ("Date", "Sun, 06 Dec 2026 08:00:00 GMT"),
        ("server", "uvicorn"),
        ("content-type", "application/json"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("etag", '"v1"'),
        *([("content-length", "2")] if length else []),
    ]
    limits = Limits(timeout=5, max_response_bytes=1024, stream_idle_timeout=5)
    response = await _respond(_Answer(headers(pairs), b"{}"), "feed", limits, InternalAddresses([]))
    copied = [(name.decode(), value.decode()) for name, value in response.raw_headers]
    names = [name for name, _ in copied]
    assert "date" not in names and "server" not in names
    assert [value for name, value in copied if name == "set-cookie"] == ["a=1", "b=2"]
    assert ("etag", '"v1"') in copied and ("content-type", "application/json") in copied
