"""The home timeline's fast path (``services.feed.routes.timelines.HomeFastPath``): a plain query
is served without FastAPI's parameter solving, anything else by the documented route, and the
two answer alike."""

from __future__ import annotations

import pytest

from services.feed.routes import timelines
from services.feed.routes.timelines import HOME_PATH, HomeFastPath, _well_formed
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


async def _answer(suite, token: str | None, query: str):
    headers = auth(token) if token else {}
    resp = await suite.client.get(f"{HOME_PATH}?{query}" if query else HOME_PATH, headers=headers)
    return resp.status_code, resp.headers.get("content-type"), resp.headers.get("link"), resp.json()


async def test_the_fast_path_and_the_route_give_the_same_pages(suite, monkeypatch):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    for i in range(5):
        await post(suite.client, bob, f"post {i}")
    taken: list[str] = []
    serve = timelines._home

    async def spy(request, caller, limit, cursor):
        taken.append("fast" if isinstance(request.scope["endpoint"], HomeFastPath) else "route")
        # Either way the request is the documented route's (metrics and traces name it).
        assert request.scope["route"].path == HOME_PATH and request.scope["route"].endpoint is not None
        return await serve(request, caller, limit, cursor)

    monkeypatch.setattr(timelines, "_home", spy)
    fast = await _answer(suite, ada, "limit=2")
    # The same query percent-encoded is not plain: the route answers it.
    slow = await _answer(suite, ada, "limit=%32")
    assert taken == ["fast", "route"]
    assert fast[0] == 200 and [p["body"] for p in fast[3]["items"]] == ["post 4", "post 3"]
    assert fast == slow
    cursor = fast[3]["next_cursor"]
    fast_next = await _answer(suite, ada, f"limit=2&cursor={cursor}")
    slow_next = await _answer(suite, ada, f"limit=2&cursor={cursor[:-1]}%{ord(cursor[-1]):02X}")
    assert taken[2:] == ["fast", "route"]
    assert fast_next[3] == slow_next[3] and [p["body"] for p in fast_next[3]["items"]] == ["post 2", "post 1"]


async def test_refusals_are_the_same_on_either_path(suite):
    """No token, a bad one, a client's (no persona), a deactivated persona's: the fast path
    refuses each as the route does."""
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    client = sign(suite.keys.active, claims(ctx=None, client_id="integration"))
    await set_persona_status(suite, bob_id, "bob", "deactivated")
    for token, status in ((None, 401), ("not-a-token", 401), (client, 403), (bob, 401)):
        fast = await _answer(suite, token, "limit=2")
        slow = await _answer(suite, token, "limit=%32")
        assert fast[0] == status and fast[1] == "application/problem+json", (token, fast)
        assert (fast[0], fast[3]["type"], fast[3]["detail"]) == (slow[0], slow[3]["type"], slow[3]["detail"])
    assert (await _answer(suite, ada, "limit=2"))[0] == 200


async def test_a_bad_cursor_is_the_same_problem_on_either_path(suite):
    ((ada, _),) = await people(suite, "ada")
    fast = await _answer(suite, ada, "cursor=bm90LWEtY3Vyc29y")
    slow = await _answer(suite, ada, "cursor=bm90LWEtY3Vyc29%35")
    assert fast[0] == 400 and fast[1] == "application/problem+json"
    assert (
        fast[0] == slow[0] and fast[3]["type"] == slow[3]["type"] and fast[3]["detail"] == slow[3]["detail"]
    )


async def test_other_methods_get_the_routes_405(suite):
    ((ada, _),) = await people(suite, "ada")
    for method in ("POST", "HEAD", "DELETE"):
        resp = await suite.client.request(method, HOME_PATH, headers=auth(ada))
        assert resp.status_code == 405, method
        assert resp.headers["allow"] == "GET", method
