"""Timelines and search: who sees what, newest first, with stable keyset cursors (search's own
rules: tests/feed/test_search*.py)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic_core import to_json
from sqlalchemy import delete
from sqlmodel import col

from services.feed import home_sql
from services.feed.models import PersonaReplica
from tests.feed.support import (
    bodies,
    follow,
    make_group,
    membership,
    people,
    post,
    send_events,
    set_persona_status,
    statements,
)
from tests.helpers import auth, with_personal

HOME = "/api/v1/timelines/home"


async def test_home_has_own_followed_and_group_posts_only(suite):
    (ada, ada_id), (bob, bob_id), (cyd, cyd_id), (dan, dan_id) = await people(
        suite, "ada", "bob", "cyd", "dan"
    )
    group = await make_group(suite, {ada_id: "member", dan_id: "owner"})
    other_group = await make_group(suite, {cyd_id: "owner"}, visibility="open")
    await follow(suite.client, ada, bob_id)
    await post(suite.client, ada, "ada own")
    await post(suite.client, bob, "bob to org")
    await post(suite.client, bob, "bob to followers", audience="followers")
    await post(suite.client, cyd, "cyd not followed")
    await post(suite.client, cyd, "cyd in open group", audience="group", group_id=other_group)
    await post(suite.client, dan, "dan in ada's group", audience="group", group_id=group)
    assert await bodies(suite.client, ada, HOME) == [
        "dan in ada's group",
        "bob to followers",
        "bob to org",
        "ada own",
    ]
    assert await bodies(suite.client, cyd, HOME) == ["cyd in open group", "cyd not followed"]


async def test_leaving_a_group_removes_its_posts_from_home(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"})
    await post(suite.client, ada, "for the group", audience="group", group_id=group)
    assert await bodies(suite.client, bob, HOME) == ["for the group"]
    await send_events(suite, ("membership.removed", group, membership(group, bob_id)))
    assert await bodies(suite.client, bob, HOME) == []
    gone = await suite.client.get(f"/api/v1/timelines/groups/{group}", headers=auth(bob))
    assert gone.status_code == 404


async def test_followers_only_post_needs_following(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    secret = await post(suite.client, ada, "for followers", audience="followers")
    assert (await suite.client.get(f"/api/v1/posts/{secret['id']}", headers=auth(bob))).status_code == 404
    assert await bodies(suite.client, bob, f"/api/v1/timelines/personas/{ada_id}") == []
    await follow(suite.client, bob, ada_id)
    assert await bodies(suite.client, bob, f"/api/v1/timelines/personas/{ada_id}") == ["for followers"]
    await suite.client.delete(f"/api/v1/following/{ada_id}", headers=auth(bob))
    assert await bodies(suite.client, bob, HOME) == []


async def test_nothing_crosses_contexts(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    home_post = await post(suite.client, ada["personal"], "weekend plans #fun")
    work_post = await post(suite.client, ada["pro"], "quarterly plans #fun")
    personal_group = await make_group(
        suite, {ada["personal_id"]: "owner"}, context="personal", visibility="open"
    )
    for token, visible, hidden in (
        (bob["pro"], work_post, home_post),
        (bob["personal"], home_post, work_post),
    ):
        assert (
            await suite.client.get(f"/api/v1/posts/{hidden['id']}", headers=auth(token))
        ).status_code == 404
        assert (
            await suite.client.get(f"/api/v1/posts/{visible['id']}", headers=auth(token))
        ).status_code == 200
        assert await bodies(suite.client, token, "/api/v1/timelines/organisation") == [visible["body"]]
        assert await bodies(suite.client, token, "/api/v1/timelines/tags/fun") == [visible["body"]]
        assert await bodies(suite.client, token, "/api/v1/posts", q="plans") == [visible["body"]]
    for persona_id in (ada["personal_id"],):
        resp = await suite.client.get(f"/api/v1/timelines/personas/{persona_id}", headers=auth(bob["pro"]))
        assert resp.status_code == 404
        resp = await suite.client.put(f"/api/v1/following/{persona_id}", headers=auth(bob["pro"]))
        assert resp.status_code == 404
    resp = await suite.client.get(f"/api/v1/timelines/groups/{personal_group}", headers=auth(bob["pro"]))
    assert resp.status_code == 404
    reaction = await suite.client.put(
        f"/api/v1/posts/{home_post['id']}/reactions/like", headers=auth(bob["pro"])
    )
    assert reaction.status_code == 404
    comment = await suite.client.post(
        f"/api/v1/posts/{home_post['id']}/comments", json={"body": "hi"}, headers=auth(bob["pro"])
    )
    assert comment.status_code == 404


async def test_secret_and_closed_group_posts_never_reach_non_members(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    secret = await make_group(suite, {ada_id: "owner"}, visibility="secret")
    closed = await make_group(suite, {ada_id: "owner"}, visibility="closed")
    open_ = await make_group(suite, {ada_id: "owner"}, visibility="open")
    hidden = [
        await post(suite.client, ada, f"#news word in {name}", audience="group", group_id=group)
        for name, group in (("secret", secret), ("closed", closed))
    ]
    await post(suite.client, ada, "#news word in open", audience="group", group_id=open_)
    await follow(suite.client, bob, ada_id)
    for path, params in (
        (HOME, {}),
        ("/api/v1/timelines/organisation", {}),
        (f"/api/v1/timelines/personas/{ada_id}", {}),
        ("/api/v1/timelines/tags/news", {}),
        ("/api/v1/posts", {"q": "word"}),
    ):
        seen = await bodies(suite.client, bob, path, **params)
        assert not any("secret" in b or "closed" in b for b in seen), (path, seen)
    assert await bodies(suite.client, bob, "/api/v1/posts", q="word") == ["#news word in open"]
    for created in hidden:
        assert (
            await suite.client.get(f"/api/v1/posts/{created['id']}", headers=auth(bob))
        ).status_code == 404
        history = await suite.client.get(f"/api/v1/posts/{created['id']}/history", headers=auth(bob))
        assert history.status_code == 404
    for group in (secret, closed):
        resp = await suite.client.get(f"/api/v1/timelines/groups/{group}", headers=auth(bob))
        assert resp.status_code == 404
    assert await bodies(suite.client, bob, f"/api/v1/timelines/groups/{open_}") == ["#news word in open"]
    assert len(await bodies(suite.client, ada, "/api/v1/timelines/tags/news")) == 3


async def test_deactivated_and_erased_personas_vanish_from_every_list(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    group = await make_group(suite, {ada_id: "member", bob_id: "owner"})
    created = await post(suite.client, bob, "bob speaks #topic")
    await post(suite.client, bob, "bob speaks in the group", audience="group", group_id=group)
    mine = await post(suite.client, ada, "ada stays")
    assert len(await bodies(suite.client, ada, HOME)) == 3
    await set_persona_status(suite, bob_id, "bob", "deactivated")
    assert await bodies(suite.client, ada, HOME) == ["ada stays"]
    assert (await suite.client.delete(f"/api/v1/posts/{mine['id']}", headers=auth(ada))).status_code == 204
    for path, params in (
        (HOME, {}),
        ("/api/v1/timelines/organisation", {}),
        ("/api/v1/timelines/tags/topic", {}),
        ("/api/v1/posts", {"q": "speaks"}),
    ):
        assert await bodies(suite.client, ada, path, **params) == [], path
    assert (await suite.client.get(f"/api/v1/posts/{created['id']}", headers=auth(ada))).status_code == 404
    resp = await suite.client.get(f"/api/v1/timelines/personas/{bob_id}", headers=auth(ada))
    assert resp.status_code == 404
    following = await suite.client.get("/api/v1/following", headers=auth(ada))
    assert following.json()["items"] == []
    ((eve, eve_id),) = await people(suite, "eve")
    await set_persona_status(suite, eve_id, "eve", "deactivated")
    assert (await suite.client.get(HOME, headers=auth(eve))).status_code == 401


async def test_erasing_a_personal_persona_removes_its_posts(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    await follow(suite.client, bob["personal"], ada["personal_id"])
    await post(suite.client, ada["personal"], "holiday photos")
    assert await bodies(suite.client, bob["personal"], HOME) == ["holiday photos"]
    resp = await suite.client.delete("/api/v1/me/personas/personal", headers=auth(ada["pro"]))
    assert resp.status_code == 204
    await suite.deliver()
    assert await bodies(suite.client, bob["personal"], HOME) == []
    assert await bodies(suite.client, bob["personal"], "/api/v1/posts", q="holiday") == []
    assert (await suite.client.get("/api/v1/following", headers=auth(bob["personal"]))).json()["items"] == []


async def test_home_cursor_is_stable_while_new_posts_arrive(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    for i in range(7):
        await post(suite.client, bob, f"old {i}")
    seen: list[str] = []
    cursor = None
    new = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await suite.client.get(HOME, params=params, headers=auth(ada))).json()
        seen += [p["body"] for p in page["items"]]
        await post(suite.client, bob, f"new {new}")
        new += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"old {i}" for i in reversed(range(7))]
    first = await bodies(suite.client, ada, HOME, limit=3)
    assert first == [f"new {i}" for i in reversed(range(new))][:3]


async def test_home_page_costs_at_most_two_statements_and_no_offset(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "member", bob_id: "member"})
    await follow(suite.client, ada, bob_id)
    for i in range(5):
        await post(suite.client, bob, f"post {i}")
        await post(suite.client, bob, f"group {i}", audience="group", group_id=group)
    first = await suite.client.get(HOME, params={"limit": 4}, headers=auth(ada))
    with statements(suite) as seen:
        first = await suite.client.get(HOME, params={"limit": 4}, headers=auth(ada))
    assert first.status_code == 200
    assert 1 <= len(seen) <= 2, seen
    # On PostgreSQL the page is built by the database (the statements of home_sql).
    pages = {home_sql.INBOX_FIRST_PAGE, home_sql.INBOX_LATER_PAGE, home_sql.FIRST_PAGE, home_sql.LATER_PAGE}
    built_by_database = any(statement in pages for statement, _ in seen)
    assert built_by_database == suite.feed.state.database.is_postgres
    with statements(suite) as seen:
        deep = await suite.client.get(
            HOME, params={"limit": 4, "cursor": first.json()["next_cursor"]}, headers=auth(ada)
        )
    assert deep.status_code == 200 and len(deep.json()["items"]) == 4
    assert 1 <= len(seen) <= 2, seen
    # SQLite's dialect always renders "LIMIT ? OFFSET ?"; the offset must then be 0.
    for statement, parameters in seen:
        if "OFFSET" in statement.upper():
            assert statement.rstrip().upper().endswith("OFFSET ?") and parameters[-1] == 0, statement


async def test_bad_cursors_and_limits_are_400_and_422(suite):
    ((ada, _),) = await people(suite, "ada")
    for _ in range(3):
        await post(suite.client, ada, "x")
    organisation = await suite.client.get(
        "/api/v1/timelines/organisation", params={"limit": 1}, headers=auth(ada)
    )
    foreign = organisation.json()["next_cursor"]
    forged = base64.urlsafe_b64encode(json.dumps({"s": "home:x", "k": ["nope"]}).encode()).decode()
    for cursor in ("garbage", "%%%", foreign, forged, "eyJzIjoxfQ"):
        resp = await suite.client.get(HOME, params={"cursor": cursor}, headers=auth(ada))
        assert resp.status_code == 400, (cursor, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
    for limit in ("0", "-1", "101", "abc", "1e3"):
        resp = await suite.client.get(HOME, params={"limit": limit}, headers=auth(ada))
        assert resp.status_code == 422
    for tag in ("a b", "#x", "x" * 41, "-lead"):
        resp = await suite.client.get(f"/api/v1/timelines/tags/{tag}", headers=auth(ada))
        assert resp.status_code in (404, 422), tag


async def test_search_finds_words_and_paginates(suite):
    """``GET /api/v1/posts?q=`` is the search (tests/feed/test_search.py): words, not
    substrings, and nothing in a query is a wildcard or SQL."""
    ((ada, _),) = await people(suite, "ada")
    await post(suite.client, ada, "100% done")
    await post(suite.client, ada, "1000 done")
    await post(suite.client, ada, "under_score")
    await post(suite.client, ada, "underXscore")
    assert await bodies(suite.client, ada, "/api/v1/posts", q="100%") == ["100% done"]
    assert await bodies(suite.client, ada, "/api/v1/posts", q="0%") == []
    assert await bodies(suite.client, ada, "/api/v1/posts", q="under_score") == ["under_score"]
    assert await bodies(suite.client, ada, "/api/v1/posts", q="' OR 1=1 --") == []
    page = await suite.client.get("/api/v1/posts", params={"q": "DONE", "limit": 1}, headers=auth(ada))
    assert [p["body"] for p in page.json()["items"]] == ["1000 done"]
    assert page.headers["link"].endswith('rel="next"')
    rest = await suite.client.get(
        "/api/v1/posts", params={"q": "done", "cursor": page.json()["next_cursor"]}, headers=auth(ada)
    )
    assert [p["body"] for p in rest.json()["items"]] == ["100% done"]
    other = await suite.client.get(
        "/api/v1/posts", params={"q": "score", "cursor": page.json()["next_cursor"]}, headers=auth(ada)
    )
    assert other.status_code == 400
    for q in ("", "a", " a ", "x" * 64):
        resp = await suite.client.get("/api/v1/posts", params={"q": q}, headers=auth(ada))
        assert resp.status_code == 200 and resp.json()["items"] == [], q
    for q in ("x" * 257, "x" * 65):
        assert (
            await suite.client.get("/api/v1/posts", params={"q": q}, headers=auth(ada))
        ).status_code == 422
    assert (await suite.client.get("/api/v1/posts", headers=auth(ada))).status_code == 422


async def test_search_refuses_control_characters(suite):
    ((ada, _),) = await people(suite, "ada")
    for q in ("\x00ab", "\x7fzz", "a\x1bb"):
        resp = await suite.client.get("/api/v1/posts", params={"q": q}, headers=auth(ada))
        assert resp.status_code == 422, q
    for q in ("ab\ncd", "ab\tcd"):  # blanks between words
        resp = await suite.client.get("/api/v1/posts", params={"q": q}, headers=auth(ada))
        assert resp.status_code == 200, q


async def test_organisation_and_persona_timelines_paginate(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    for i in range(3):
        await post(suite.client, ada, f"org {i}")
    await post(suite.client, ada, "followers only", audience="followers")
    assert await bodies(suite.client, bob, "/api/v1/timelines/organisation") == ["org 2", "org 1", "org 0"]
    first = await suite.client.get(
        f"/api/v1/timelines/personas/{ada_id}", params={"limit": 2}, headers=auth(ada)
    )
    assert [p["body"] for p in first.json()["items"]] == ["followers only", "org 2"]
    rest = await suite.client.get(
        f"/api/v1/timelines/personas/{ada_id}",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=auth(ada),
    )
    assert [p["body"] for p in rest.json()["items"]] == ["org 1", "org 0"]
    assert rest.json()["next_cursor"] is None and "link" not in rest.headers
    unknown = await suite.client.get(
        "/api/v1/timelines/personas/00000000-0000-7000-8000-000000000000", headers=auth(bob)
    )
    assert unknown.status_code == 404


async def test_home_for_a_reader_with_many_sources_uses_subqueries_alike(suite, monkeypatch):
    from services.feed import timelines

    (ada, ada_id), (bob, bob_id), (cyd, cyd_id) = await people(suite, "ada", "bob", "cyd")
    group = await make_group(suite, {ada_id: "member", cyd_id: "owner"})
    await follow(suite.client, ada, bob_id)
    await follow(suite.client, ada, cyd_id)
    await post(suite.client, bob, "from bob")
    await post(suite.client, cyd, "in the group", audience="group", group_id=group)
    inline = await bodies(suite.client, ada, HOME)
    monkeypatch.setattr(timelines, "MAX_INLINE_SOURCES", 1)
    assert await bodies(suite.client, ada, HOME) == inline == ["in the group", "from bob"]


async def test_home_items_have_exactly_the_shape_of_a_post(suite):
    """The home timeline serialises its rows itself (the busiest read skips building models):
    each item must be what GET /posts/{id} answers for the same post."""
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "member", bob_id: "owner"})
    await follow(suite.client, ada, bob_id)
    first = await post(
        suite.client, bob, "Hello @ada #news", links=[{"url": "https://x.example/a", "title": "A"}]
    )
    await post(suite.client, bob, "In the group", audience="group", group_id=group)
    await suite.client.put(f"/api/v1/posts/{first['id']}/reactions/celebrate", headers=auth(ada))
    await suite.client.patch(
        f"/api/v1/posts/{first['id']}", json={"body": "Hello again @ada #news"}, headers=auth(bob)
    )
    items = (await suite.client.get(HOME, headers=auth(ada))).json()["items"]
    assert len(items) == 2
    for item in items:
        single = await suite.client.get(f"/api/v1/posts/{item['id']}", headers=auth(ada))
        assert item == single.json()
    assert items[1]["reactions"]["mine"] == ["celebrate"] and items[1]["edited_at"]


async def test_home_items_keep_every_character_and_write_null_for_a_missing_name(suite):
    """On PostgreSQL each item's JSON is concatenated by the database from escaped values: text
    that JSON must escape comes back as written, and a name the replica lacks is a null, not a
    lost item."""
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    tricky = 'Quote " back\\slash / tab\t new\nline é 漢 🎉 \u2028 </script> {"a": [1]} \\u0041'
    data = {
        "id": bob_id,
        "context": "professional",
        "handle": "bob",
        "display_name": 'Bob "the \\ builder"',
        "status": "active",
        "updated_at": datetime.now(UTC).isoformat(),
    }
    await send_events(suite, ("persona.updated", bob_id, data))
    await post(suite.client, bob, tricky, links=[{"url": 'https://x.example/?q="1"', "title": 'A "B" \\ C'}])
    await post(suite.client, ada, "mine")
    resp = await suite.client.get(HOME, headers=auth(ada))
    items = resp.json()["items"]
    assert [item["body"] for item in items] == ["mine", tricky]
    assert items[1]["author"]["display_name"] == 'Bob "the \\ builder"'
    assert items[1]["links"] == [{"url": 'https://x.example/?q="1"', "title": 'A "B" \\ C'}]
    for item in items:
        single = await suite.client.get(f"/api/v1/posts/{item['id']}", headers=auth(ada))
        assert item == single.json()
    # Ada's own replica row goes (its event not yet arrived, say): her post stays, nameless.
    async with suite.feed.state.database.sessionmaker() as session, session.begin():
        await session.execute(delete(PersonaReplica).where(col(PersonaReplica.id) == uuid.UUID(ada_id)))
    items = (await suite.client.get(HOME, headers=auth(ada))).json()["items"]
    assert [item["body"] for item in items] == ["mine", tricky]
    assert items[0]["author"] == {"id": ada_id, "handle": None, "display_name": None}


@pytest.mark.postgres
async def test_the_databases_timestamps_are_written_as_pydantic_writes_them(suite):
    """On PostgreSQL the home page's JSON is built by the database; its timestamps must read
    exactly like the rest of the API's, with and without microseconds."""
    database = suite.feed.state.database
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 6, 1, 12, 0, 0, 7, tzinfo=timezone(timedelta(hours=-5))),
    ]
    for moment in moments:
        ((written,),) = await database.raw_fetch(
            f"SELECT {home_sql.sql_timestamp('$1::timestamptz')}", moment
        )
        assert f'"{written}"'.encode() == to_json(moment.astimezone(UTC)), moment
    ((missing,),) = await database.raw_fetch(f"SELECT {home_sql.sql_timestamp('$1::timestamptz')}", None)
    assert missing is None
