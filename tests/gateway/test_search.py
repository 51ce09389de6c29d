"""``GET /api/v1/search``: the gateway asks each type's owner and puts the pages side by side
(gateway.search, decision 0034)."""

from __future__ import annotations

from typing import Any

from gateway.routing import SEARCH_TYPES, resolve
from tests.helpers import auth, create_group, person, with_personal


def test_each_type_belongs_to_its_owner_and_the_search_to_the_gateway() -> None:
    assert {kind: resolve(f"/api/v1/search/{kind}") for kind in SEARCH_TYPES} == SEARCH_TYPES
    assert resolve("/api/v1/search") == "gateway"
    assert resolve("/api/v1/search/nothing") is None
    assert resolve("/api/v1/searches") is None


async def _world(suite: Any) -> dict[str, Any]:
    client = suite.client
    token, _ = await person(client, "quentin")
    await suite.deliver()  # feed and groups learn of the persona
    posted = await client.post(
        "/api/v1/posts", json={"body": "The observatory planning meeting is at noon"}, headers=auth(token)
    )
    assert posted.status_code == 201, posted.text
    for n in range(3):
        more = await client.post(
            "/api/v1/posts", json={"body": f"Observatory night {n}: telescopes"}, headers=auth(token)
        )
        assert more.status_code == 201, more.text
    await create_group(
        client, token, "stargazers", name="Stargazers", purpose="Run the observatory open nights."
    )
    await suite.deliver()
    return {"token": token}


async def test_one_search_answers_a_page_per_type_asked_for(suite) -> None:
    world = await _world(suite)
    resp = await suite.client.get(
        "/api/v1/search",
        params={"q": "observatory", "type": "posts,groups", "limit": 2},
        headers=auth(world["token"]),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"posts", "groups"}
    assert len(body["posts"]["items"]) == 2
    assert body["posts"]["next_cursor"]
    assert all("<mark>" in item["highlight"] for item in body["posts"]["items"])
    assert [g["handle"] for g in body["groups"]["items"]] == ["stargazers"]

    every = await suite.client.get(
        "/api/v1/search", params={"q": "observatory"}, headers=auth(world["token"])
    )
    assert every.status_code == 200, every.text
    assert set(every.json()) == set(SEARCH_TYPES)

    # a type's cursor continues that type alone, and the page is the owner's own
    cursor = body["posts"]["next_cursor"]
    rest = await suite.client.get(
        "/api/v1/search",
        params={"q": "observatory", "type": "posts", "limit": 2, "cursor": cursor},
        headers=auth(world["token"]),
    )
    direct = await suite.client.get(
        "/api/v1/search/posts",
        params={"q": "observatory", "limit": 2, "cursor": cursor},
        headers=auth(world["token"]),
    )
    assert rest.status_code == direct.status_code == 200, (rest.text, direct.text)
    assert rest.json()["posts"] == direct.json()
    first_ids = {item["id"] for item in body["posts"]["items"]}
    assert first_ids.isdisjoint(item["id"] for item in rest.json()["posts"]["items"])


async def test_what_the_gateway_refuses_and_what_an_owner_refuses(suite) -> None:
    token, _ = await person(suite.client, "rosalind")
    await suite.deliver()
    cases = [
        ({"q": "x", "type": "posts,spaceships"}, 422, "invalid-search-type"),
        ({"q": "x", "type": "posts,people", "cursor": "abc"}, 422, "cursor-needs-one-type"),
        ({"q": "x", "cursor": "abc"}, 422, "cursor-needs-one-type"),
        ({"q": "a" * 300, "type": "posts,people"}, 422, "query-too-long"),
        ({"q": "budget", "type": "posts", "cursor": "bm90LWEtY3Vyc29y"}, 400, "bad-cursor"),
    ]
    for params, status, slug in cases:
        resp = await suite.client.get("/api/v1/search", params=params, headers=auth(token))
        assert resp.status_code == status, (params, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["type"].endswith(slug), (params, resp.json())
    anonymous = await suite.client.get("/api/v1/search", params={"q": "x"})
    assert anonymous.status_code == 401
    for method in ("POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"):
        other = await suite.client.request(method, "/api/v1/search", params={"q": "x"}, headers=auth(token))
        assert other.status_code == 405, (method, other.text)
        assert other.headers["allow"] == "GET"


async def test_a_persona_of_the_other_context_finds_none_of_it(suite) -> None:
    await _world(suite)
    both = await with_personal(suite.client, "ursula")
    await suite.deliver()
    resp = await suite.client.get(
        "/api/v1/search", params={"q": "observatory"}, headers=auth(both["personal"])
    )
    assert resp.status_code == 200, resp.text
    assert all(page["items"] == [] for page in resp.json().values()), resp.json()
    people = await suite.client.get("/api/v1/search", params={"q": "quentin"}, headers=auth(both["personal"]))
    assert people.json()["people"]["items"] == []
