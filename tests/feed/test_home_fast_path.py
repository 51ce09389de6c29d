"""The home timeline's fast path (``services.feed.routes.timelines.HomeFastRoute``): a plain query
is served without FastAPI's parameter solving, anything else by the documented route, and the
two answer alike."""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute

from domain.principal import current_persona
from kit.errors import Forbidden
from services.feed.routes import timelines
from services.feed.routes.timelines import HOME_PATH, PLAIN_QUERY, HomeFastRoute, _well_formed
from tests.feed.support import follow, people, post, set_persona_status
from tests.helpers import auth
from tests.tokens import claims, sign


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (20, None)),
        ("limit=3", (3, None)),
        ("limit=100&cursor=abc-_09", (100, "abc-_09")),
        ("cursor=abc&other=1", (20, "abc")),
        ("limit=0", None),
        ("limit=101", None),
        ("limit=0003", None),
        ("limit=%33", None),
        ("limit=", None),
        ("limit=1.5", None),
        ("limit=3&limit=4", None),
        ("lim%69t=3", None),
        ("cursor=", None),
        ("cursor=a%3Db", None),
        ("cursor=a+b", None),
        ("cursor=" + "a" * 513, None),
    ],
)
def test_only_a_plain_limit_and_cursor_take_the_fast_path(query, expected):
    assert _well_formed(query) == expected


def _not_plain(query: str) -> str:
    """The same query with the last character of its value percent-encoded: FastAPI reads the
    same values, the fast path does not take it."""
    return f"{query[:-1]}%{ord(query[-1]):02X}"


async def _answer(suite, token: str | None, query: str):
    headers = auth(token) if token else {}
    resp = await suite.client.get(f"{HOME_PATH}?{query}" if query else HOME_PATH, headers=headers)
    named = ("content-type", "link", "www-authenticate")
    body = {k: v for k, v in resp.json().items() if k != "trace_id"}  # each request's own
    return resp.status_code, {k: resp.headers.get(k) for k in named}, body


async def test_the_fast_path_and_the_route_give_the_same_pages(suite, monkeypatch):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    for i in range(5):
        await post(suite.client, bob, f"post {i}")
    taken: list[str] = []
    serve = timelines._home

    async def spy(request, caller, limit, cursor):
        taken.append("fast" if PLAIN_QUERY in request.scope else "route")
        # Either way the request is the documented route's (metrics and traces name it).
        assert isinstance(request.scope["route"], APIRoute) and request.scope["route"].path == HOME_PATH
        return await serve(request, caller, limit, cursor)

    monkeypatch.setattr(timelines, "_home", spy)
    fast = await _answer(suite, ada, "limit=2")
    # The same query percent-encoded is not plain: FastAPI's route answers it.
    slow = await _answer(suite, ada, _not_plain("limit=2"))
    assert taken == ["fast", "route"]
    assert fast[0] == 200 and [p["body"] for p in fast[2]["items"]] == ["post 4", "post 3"]
    assert fast[1]["link"] is not None
    assert fast == slow
    cursor = fast[2]["next_cursor"]
    fast_next = await _answer(suite, ada, f"limit=2&cursor={cursor}")
    slow_next = await _answer(suite, ada, _not_plain(f"limit=2&cursor={cursor}"))
    assert taken[2:] == ["fast", "route"]
    assert fast_next == slow_next and [p["body"] for p in fast_next[2]["items"]] == ["post 2", "post 1"]


async def test_refusals_are_the_same_on_either_path(suite):
    """No token, a bad one, a client's (no persona), a deactivated persona's, a bad cursor: the
    fast path refuses each as the route does."""
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    client = sign(suite.keys.active, claims(ctx=None, client_id="integration"))
    await set_persona_status(suite, bob_id, "bob", "deactivated")
    for token, query, status in (
        (None, "limit=2", 401),
        ("not-a-token", "limit=2", 401),
        (client, "limit=2", 403),
        (bob, "limit=2", 401),
        (ada, "cursor=bm90LWEtY3Vyc29y", 400),
    ):
        fast = await _answer(suite, token, query)
        slow = await _answer(suite, token, _not_plain(query))
        assert fast[0] == status and fast[1]["content-type"] == "application/problem+json", (token, fast)
        assert fast == slow
    assert (await _answer(suite, ada, "limit=2"))[0] == 200


async def _feed_metrics(suite) -> str:
    transport = httpx.ASGITransport(app=suite.feed)
    async with httpx.AsyncClient(transport=transport, base_url="http://feed") as client:
        return (await client.get("/metrics")).text


async def test_other_methods_get_the_routes_405_named_by_the_route(suite):
    ((ada, _),) = await people(suite, "ada")
    for method in ("POST", "HEAD", "DELETE"):
        resp = await suite.client.request(method, HOME_PATH, headers=auth(ada))
        assert resp.status_code == 405, method
        assert resp.headers["allow"] == "GET", method
    assert (await suite.client.get(HOME_PATH, headers=auth(ada))).status_code == 200
    text = await _feed_metrics(suite)
    for method, status in (("POST", "405"), ("HEAD", "405"), ("DELETE", "405"), ("GET", "200")):
        line = f'http_requests_total{{method="{method}",route="{HOME_PATH}",status="{status}"}} 1.0'
        assert line in text, (line, text)


async def test_dependency_overrides_send_every_request_to_the_route(suite):
    ((ada, _),) = await people(suite, "ada")

    async def refuse() -> None:
        raise Forbidden("Overridden.")

    suite.feed.dependency_overrides[current_persona] = refuse
    try:
        resp = await suite.client.get(HOME_PATH, params={"limit": 2}, headers=auth(ada))
    finally:
        suite.feed.dependency_overrides.clear()
    assert resp.status_code == 403 and resp.json()["detail"] == "Overridden."


def test_the_fast_path_refuses_a_route_with_parameters_it_does_not_know():
    async def get_home_timeline(request, caller, limit, cursor, tag):  # pragma: no cover
        raise AssertionError

    route = APIRoute(HOME_PATH, get_home_timeline)
    with pytest.raises(RuntimeError, match="tag"):
        HomeFastRoute(route)
