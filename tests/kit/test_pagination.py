"""Opaque cursors: stable pages, a Link header, and a 400 for any cursor that is not ours."""

from __future__ import annotations

import pytest

from kit.errors import BadRequest
from kit.pagination import decode_cursor, encode_cursor
from tests.helpers import auth, create_group, person


def test_cursor_round_trips_and_is_bound_to_its_list():
    cursor = encode_cursor("groups", ["abc"])
    assert decode_cursor("groups", cursor, arity=1) == ["abc"]
    with pytest.raises(BadRequest):
        decode_cursor("members:x", cursor, arity=1)
    with pytest.raises(BadRequest):
        decode_cursor("groups", cursor, arity=2)
    assert decode_cursor("groups", cursor, arity=(1, 2)) == ["abc"]
    with pytest.raises(BadRequest):
        decode_cursor("groups", cursor, arity=(2, 3))


@pytest.mark.parametrize(
    "garbage", ["%%%", "bm90IGpzb24", "e30", "W10", "eyJzIjoiZ3JvdXBzIiwiayI6W3RydWVdfQ"]
)
def test_garbage_cursor_is_rejected(garbage):
    with pytest.raises(BadRequest):
        decode_cursor("groups", garbage, arity=1)


async def test_pages_walk_the_whole_list_once_with_link_headers(suite):
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    made = [(await create_group(suite.client, token, f"group_{i:02d}"))["id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        resp = await suite.client.get("/api/v1/groups", params=params, headers=auth(token))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        seen += [g["id"] for g in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in resp.headers
            break
        assert resp.headers["link"].endswith('>; rel="next"')
        assert resp.headers["link"].startswith("</api/v1/groups?")
    assert seen == list(reversed(made))


@pytest.mark.parametrize("limit", ["0", "-1", "101", "1000000000", "abc", "1e3"])
async def test_out_of_range_limit_is_422(suite, limit):
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    resp = await suite.client.get("/api/v1/groups", params={"limit": limit}, headers=auth(token))
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"


async def test_cursor_from_another_list_is_400(suite):
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    for i in range(3):
        await create_group(suite.client, token, f"group_{i}")
    cursor = (await suite.client.get("/api/v1/groups", params={"limit": 1}, headers=auth(token))).json()[
        "next_cursor"
    ]
    resp = await suite.client.get("/api/v1/timelines/home", params={"cursor": cursor}, headers=auth(token))
    assert resp.status_code == 400
    assert resp.json()["type"].endswith("/bad-cursor")


async def test_well_formed_cursor_with_a_bad_key_is_400_not_500(suite):
    token, persona_id = await person(suite.client, "ada")
    await suite.deliver()
    for path, scope in (("/api/v1/groups", "groups"), ("/api/v1/timelines/home", f"home:{persona_id}")):
        cursor = encode_cursor(scope, ["not-a-uuid"])
        resp = await suite.client.get(path, params={"cursor": cursor}, headers=auth(token))
        assert resp.status_code == 400, resp.text
