"""The gateway's one exception to "a bearer token or a public route" (decision 0035):
``GET /api/v1/stream`` with a ``ticket`` query parameter and no Authorization header goes to
feed without a bearer, since feed redeems the ticket; it still counts against the client
address's limit. Any other method, path or header keeps the bearer check at the gateway."""

from __future__ import annotations

import httpx
import pytest

from gateway.routing import opens_stream_with_ticket
from tests.helpers import auth, person
from tests.suite import build_suite

LIMITS = {"default": {"per_token": 100, "per_address": 6, "window_seconds": 60}}


def _scope(query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, object]:
    return {"type": "http", "query_string": query, "headers": headers or []}


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "opens"),
    [
        ("GET", "/api/v1/stream", b"ticket=gst_x", [], True),
        ("GET", "/api/v1/stream", b"last_event_id=a.b&ticket=", [], True),
        ("GET", "/api/v1/stream", b"tick%65t=gst_x", [], True),  # as Starlette decodes it
        ("GET", "/api/v1/stream", b"ticket=gst_x", [(b"authorization", b"Bearer t")], False),
        ("GET", "/api/v1/stream", b"", [], False),
        ("GET", "/api/v1/stream", b"tickets=gst_x", [], False),
        ("GET", "/api/v1/stream", b"x=ticket", [], False),
        ("POST", "/api/v1/stream", b"ticket=gst_x", [], False),
        ("HEAD", "/api/v1/stream", b"ticket=gst_x", [], False),
        ("GET", "/api/v1/stream/", b"ticket=gst_x", [], False),
        ("GET", "/api/v1/stream/tickets", b"ticket=gst_x", [], False),
        ("GET", "/api/v1/notifications", b"ticket=gst_x", [], False),
    ],
)
def test_only_a_get_of_the_stream_with_a_ticket_and_no_authorization_opens_without_a_bearer(
    method, path, query, headers, opens
):
    assert opens_stream_with_ticket(method, path, _scope(query, headers)) is opens


class Recording(httpx.AsyncBaseTransport):
    """What reaches a service: (method, path) of each request sent to it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def suite(database_urls):
    feed = {"stream_max_seconds": 0.5, "stream_poll_seconds": 0.05}
    async with build_suite(database_urls, feed=feed, gateway={"rate_limits": LIMITS}) as built:
        recording = Recording(built.router.apps["feed"])
        built.router.apps["feed"] = recording  # type: ignore[assignment]
        built.feed_requests = recording.seen  # type: ignore[attr-defined]
        yield built


async def test_a_ticketed_stream_reaches_feed_without_a_bearer_and_nothing_else_does(suite):
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=suite.gateway, client=("198.51.100.7", 4000)),
        base_url="http://gateway",
    )
    async with client:
        resp = await client.get("/api/v1/stream", params={"ticket": "gst_unknown"})
        assert resp.status_code == 401
        assert "ticket" in resp.json()["detail"]  # feed's answer, not the gateway's
        assert suite.feed_requests == [("GET", "/api/v1/stream")]
        suite.feed_requests.clear()
        for method, path in (
            ("GET", "/api/v1/notifications"),
            ("POST", "/api/v1/stream"),
            ("GET", "/api/v1/stream/"),
        ):
            resp = await client.request(method, path, params={"ticket": "gst_unknown"})
            assert resp.status_code == 401, (method, path)
            assert resp.json()["detail"] == "This operation needs a bearer token.", (method, path)
        # with an Authorization header, the bearer is the gateway's to check
        resp = await client.get("/api/v1/stream", params={"ticket": "gst_x"}, headers=auth("a.b.c"))
        assert resp.status_code == 401
        assert suite.feed_requests == []
        # and the stream without a token counts against the address's limit (6 a minute here)
        last = await client.get("/api/v1/stream", params={"ticket": "gst_unknown"})
        assert last.status_code == 401
        assert last.headers["ratelimit"].startswith('"default-address";r=0')
        limited = await client.get("/api/v1/stream", params={"ticket": "gst_unknown"})
        assert limited.status_code == 429
        assert suite.feed_requests == [("GET", "/api/v1/stream")]


async def test_a_ticket_from_the_gateway_opens_the_stream_through_it(suite):
    token, _ = await person(suite.client, "ada")
    await suite.deliver()  # feed knows the persona
    answer = await suite.client.post("/api/v1/stream/tickets", headers=auth(token))
    assert answer.status_code == 201, answer.text
    ticket = answer.json()["ticket"]
    resp = await suite.client.get("/api/v1/stream", params={"ticket": ticket})
    assert resp.status_code == 200, resp.text
    assert resp.text.endswith('event: reconnect\ndata: {"reason":"timeout"}\n\n')
