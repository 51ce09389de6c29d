"""Posts: publishing with mentions, tags and links, idempotent creates, edits with history,
deletion rules and announcements."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from services.feed.models import Post, PostTag
from tests.feed.support import (
    group_data,
    make_group,
    people,
    post,
    send_events,
    statements,
    token_with_roles,
)
from tests.helpers import auth
from tests.tokens import claims, sign

POSTS = "/api/v1/posts"


async def test_post_parses_mentions_and_tags_and_keeps_links(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    created = await post(
        suite.client,
        ada,
        "Hello @bob and @nobody_here, see #CloudMove and #cloudmove, #ünïcode!",
        links=[{"url": "https://intranet.example/plan", "title": "The plan"}],
    )
    assert created["mentions"] == [{"id": bob_id, "handle": "bob"}]
    assert created["tags"] == ["cloudmove", "ünïcode"]
    assert created["links"] == [{"url": "https://intranet.example/plan", "title": "The plan"}]
    assert created["author"] == {"id": ada_id, "handle": "ada", "display_name": "Ada"}
    assert created["context"] == "professional"
    assert created["reactions"] == {
        "counts": {"like": 0, "celebrate": 0, "support": 0, "insightful": 0, "curious": 0},
        "mine": [],
    }
    got = await suite.client.get(f"{POSTS}/{created['id']}", headers=auth(bob))
    assert got.status_code == 200 and got.json()["body"] == created["body"]


async def test_mention_of_the_other_context_stays_plain_text(suite):
    from tests.helpers import with_personal

    await with_personal(suite.client, "ada")
    ((bob, _),) = await people(suite, "bob")
    created = await post(suite.client, bob, "Hi @ada_home")
    assert created["mentions"] == []


async def test_bad_post_inputs_are_problems_not_500s(suite):
    ((ada, _),) = await people(suite, "ada")
    cases = [
        {"body": ""},
        {"body": "   "},
        {"body": "x" * 5001},
        {"body": "nul \u0000 byte"},
        {"body": "hi", "audience": "everyone"},
        {"body": "hi", "audience": "group"},
        {"body": "hi", "group_id": "00000000-0000-0000-0000-000000000000"},
        {"body": "hi", "links": [{"url": "javascript:alert(1)"}]},
        {"body": "hi", "links": [{"url": "http://intranet.example/"}]},
        {"body": "hi", "links": [{"url": f"https://e.example/{i}"} for i in range(6)]},
        {"body": "hi", "author_id": "00000000-0000-0000-0000-000000000000"},
        {"body": "hi", "pinned_until": "2030-01-01T00:00:00"},
    ]
    for case in cases:
        resp = await suite.client.post(POSTS, json=case, headers=auth(ada))
        assert resp.status_code == 422, (case, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
    resp = await suite.client.post(
        POSTS, content=b'{"body": "x"', headers={**auth(ada), "content-type": "application/json"}
    )
    assert resp.status_code == 400
    for path in (f"{POSTS}/not-a-uuid", f"{POSTS}/9223372036854775808"):
        assert (await suite.client.get(path, headers=auth(ada))).status_code == 422
    big = await suite.client.post(POSTS, json={"body": "x" * 2_000_000}, headers=auth(ada))
    assert big.status_code == 413


async def test_idempotency_key_replays_the_first_answer(suite):
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    headers = {**auth(ada), "Idempotency-Key": "k-1"}
    first = await suite.client.post(POSTS, json={"body": "once"}, headers=headers)
    again = await suite.client.post(POSTS, json={"body": "once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    other = await suite.client.post(POSTS, json={"body": "different"}, headers=headers)
    assert other.status_code == 422
    by_bob = await suite.client.post(
        POSTS, json={"body": "once"}, headers={**auth(bob), "Idempotency-Key": "k-1"}
    )
    assert by_bob.status_code == 201 and by_bob.json()["id"] != first.json()["id"]
    home = (await suite.client.get("/api/v1/timelines/home", headers=auth(ada))).json()["items"]
    assert [p["body"] for p in home] == ["once"]
    bad = await suite.client.post(
        POSTS, json={"body": "x"}, headers={**auth(ada), "Idempotency-Key": "k" * 256}
    )
    assert bad.status_code == 422


async def test_concurrent_repeats_with_one_key_create_one_post(suite):
    ((ada, _),) = await people(suite, "ada")
    headers = {**auth(ada), "Idempotency-Key": "race"}
    answers = await asyncio.gather(
        *[suite.client.post(POSTS, json={"body": "race"}, headers=headers) for _ in range(5)]
    )
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1
    home = (await suite.client.get("/api/v1/timelines/home", headers=auth(ada))).json()["items"]
    assert len(home) == 1


async def test_an_edit_replaces_tag_rows_it_did_not_read(suite):
    """Two edits of one post may overlap: the later one must remove the tag rows the earlier
    wrote, although its copy of the post names no tags."""
    (ada, _), (cy, _) = await people(suite, "ada", "cyd")
    created = await post(suite.client, ada, "no tags yet")
    async with suite.feed.state.database.sessionmaker() as session, session.begin():
        # What an edit committed meanwhile left: a tag row the post's tags do not name.
        session.add(PostTag(post_id=uuid.UUID(created["id"]), tag="stale", context="professional"))
    edited = await suite.client.patch(
        f"{POSTS}/{created['id']}", json={"body": "now #fresh"}, headers=auth(ada)
    )
    assert edited.status_code == 200, edited.text
    stale = await suite.client.get("/api/v1/timelines/tags/stale", headers=auth(cy))
    fresh = await suite.client.get("/api/v1/timelines/tags/fresh", headers=auth(cy))
    assert stale.json()["items"] == []
    assert [p["id"] for p in fresh.json()["items"]] == [created["id"]]


@pytest.mark.postgres
async def test_overlapping_edits_of_a_post_take_turns(suite):
    """An edit that starts while another holds the post waits for it, then works from what
    it committed: the text it replaced goes to the history, its tag rows are replaced."""
    (ada, _), (cy, _) = await people(suite, "ada", "cyd")
    created = await post(suite.client, ada, "first")
    post_id = uuid.UUID(created["id"])
    async with suite.feed.state.database.sessionmaker() as other:
        await other.begin()
        held = await other.get(Post, post_id, with_for_update=True)  # an edit in progress
        assert held is not None
        patch = asyncio.create_task(
            suite.client.patch(f"{POSTS}/{created['id']}", json={"body": "third #c"}, headers=auth(ada))
        )
        await asyncio.sleep(0.5)  # the second edit reaches the post and waits for it
        assert not patch.done()
        held.body, held.tags = "second #b", ["b"]
        other.add(PostTag(post_id=post_id, tag="b", context="professional"))
        await other.commit()
    edited = await patch
    assert edited.status_code == 200, edited.text
    history = await suite.client.get(f"{POSTS}/{created['id']}/history", headers=auth(cy))
    assert [r["body"] for r in history.json()["items"]] == ["second #b"]
    for tag, expected in (("b", []), ("c", [created["id"]])):
        page = await suite.client.get(f"/api/v1/timelines/tags/{tag}", headers=auth(cy))
        assert [p["id"] for p in page.json()["items"]] == expected, tag


async def test_edit_keeps_history_visible_to_readers(suite):
    (ada, _), (bob, bob_id), (cy, _) = await people(suite, "ada", "bob", "cyd")
    created = await post(suite.client, ada, "first #one")
    edited = await suite.client.patch(
        f"{POSTS}/{created['id']}", json={"body": "second #two @bob"}, headers=auth(ada)
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["body"] == "second #two @bob" and body["tags"] == ["two"] and body["edited_at"]
    assert body["mentions"] == [{"id": bob_id, "handle": "bob"}]
    await suite.client.patch(f"{POSTS}/{created['id']}", json={"body": "third"}, headers=auth(ada))
    history = await suite.client.get(
        f"{POSTS}/{created['id']}/history", headers=auth(cy), params={"limit": 1}
    )
    assert history.status_code == 200
    assert [r["body"] for r in history.json()["items"]] == ["second #two @bob"]
    rest = await suite.client.get(
        f"{POSTS}/{created['id']}/history",
        headers=auth(cy),
        params={"cursor": history.json()["next_cursor"]},
    )
    assert [r["body"] for r in rest.json()["items"]] == ["first #one"]
    tagged = await suite.client.get("/api/v1/timelines/tags/one", headers=auth(cy))
    assert tagged.json()["items"] == []
    not_mine = await suite.client.patch(
        f"{POSTS}/{created['id']}", json={"body": "hijack"}, headers=auth(bob)
    )
    assert not_mine.status_code == 403
    nothing = await suite.client.patch(f"{POSTS}/{created['id']}", json={}, headers=auth(ada))
    assert nothing.status_code == 200  # an empty change changes nothing
    assert nothing.json()["body"] == "third"
    history = await suite.client.get(f"{POSTS}/{created['id']}/history", headers=auth(cy))
    assert len(history.json()["items"]) == 2  # and no revision was added


async def test_delete_rules_author_group_moderator_and_staff(suite):
    (ada, ada_id), (bob, bob_id), (cy, cy_id), (_mod, mod_id) = await people(
        suite, "ada", "bob", "cyd", "mod"
    )
    group = await make_group(suite, {ada_id: "member", bob_id: "moderator", cy_id: "member"})
    in_group = await post(suite.client, ada, "group post", audience="group", group_id=group)
    plain = await post(suite.client, ada, "plain post")
    assert (await suite.client.delete(f"{POSTS}/{in_group['id']}", headers=auth(cy))).status_code == 403
    assert (await suite.client.delete(f"{POSTS}/{plain['id']}", headers=auth(bob))).status_code == 403
    assert (await suite.client.delete(f"{POSTS}/{in_group['id']}", headers=auth(bob))).status_code == 204
    staff = token_with_roles(suite, mod_id, "moderator")
    assert (await suite.client.delete(f"{POSTS}/{plain['id']}", headers=auth(staff))).status_code == 204
    for token in (ada, bob, cy):
        home = (await suite.client.get("/api/v1/timelines/home", headers=auth(token))).json()["items"]
        assert home == []
        assert (await suite.client.get(f"{POSTS}/{plain['id']}", headers=auth(token))).status_code == 404
    own = await post(suite.client, ada, "mine")
    assert (await suite.client.delete(f"{POSTS}/{own['id']}", headers=auth(ada))).status_code == 204
    assert (await suite.client.delete(f"{POSTS}/{own['id']}", headers=auth(ada))).status_code == 404


async def test_post_events_tell_the_text_only_where_the_whole_context_reads_it(suite):
    """``post.*`` events carry a post's text as ``content`` (docs/events.md, "Who sees what")
    only when every persona of its context may read it; a deletion never carries it."""
    import json

    from sqlalchemy import select

    from services.feed.models import outbox_tables

    ((ada, _),) = await people(suite, "ada")
    created = await post(suite.client, ada, "open words")
    await suite.client.patch(f"{POSTS}/{created['id']}", json={"body": "other words"}, headers=auth(ada))
    await suite.client.delete(f"{POSTS}/{created['id']}", headers=auth(ada))
    followers = await post(suite.client, ada, "secret words", audience="followers")
    async with suite.feed.state.database.sessionmaker() as session:
        rows = (await session.execute(select(outbox_tables.event).order_by(outbox_tables.event.c.seq))).all()
    # The records of the post carry its text, to records alone (tests/feed/test_records_events.py).
    rows = [r for r in rows if not r.type.startswith("internal.records.")]
    assert [(r.type, r.subject) for r in rows] == [
        ("post.created", created["id"]),
        ("post.updated", created["id"]),
        ("post.deleted", created["id"]),
        ("post.created", followers["id"]),
    ]
    told = [json.loads(r.data).get("content") for r in rows]
    assert [content and content["text"] for content in told] == ["open words", "other words", None, None]
    assert all("secret words" not in r.data for r in rows)


async def test_group_posting_rules(suite):
    (ada, ada_id), (bob, _bob_id) = await people(suite, "ada", "bob")
    closed = await make_group(suite, {ada_id: "owner"})
    secret = await make_group(suite, {ada_id: "owner"}, visibility="secret")
    open_ = await make_group(suite, {ada_id: "owner"}, visibility="open")
    other_context = await make_group(suite, {}, context="personal", visibility="open")
    for group, status in ((closed, 404), (secret, 404), (open_, 403), (other_context, 404)):
        resp = await suite.client.post(
            POSTS, json={"body": "hi", "audience": "group", "group_id": group}, headers=auth(bob)
        )
        assert resp.status_code == status, (group, resp.text)
    await send_events(suite, ("group.archived", closed, group_data(closed, archived=True)))
    archived = await suite.client.post(
        POSTS, json={"body": "hi", "audience": "group", "group_id": closed}, headers=auth(ada)
    )
    assert archived.status_code == 403
    await send_events(suite, ("group.restored", closed, group_data(closed, archived=False)))
    await post(suite.client, ada, "back", audience="group", group_id=closed)


async def test_announcements_need_admin_or_communications_and_lead_home(suite):
    (_ada, ada_id), (bob, _), (_cy, cy_id) = await people(suite, "ada", "bob", "cyd")
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    denied = await suite.client.post(
        POSTS, json={"body": "all hands", "pinned_until": until}, headers=auth(bob)
    )
    assert denied.status_code == 403
    comms = token_with_roles(suite, ada_id, "communications")
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    late = await suite.client.post(POSTS, json={"body": "late", "pinned_until": past}, headers=auth(comms))
    assert late.status_code == 422
    group_pin = await suite.client.post(
        POSTS,
        json={"body": "x", "pinned_until": until, "audience": "followers"},
        headers=auth(comms),
    )
    assert group_pin.status_code == 422
    announcement = await post(suite.client, comms, "All hands on Friday", pinned_until=until)
    assert announcement["pinned"] is True
    await post(suite.client, bob, "my own news")
    home = (await suite.client.get("/api/v1/timelines/home", headers=auth(bob))).json()["items"]
    assert [p["body"] for p in home] == ["All hands on Friday", "my own news"]
    root = token_with_roles(suite, cy_id, "admin")
    unpinned = await suite.client.patch(
        f"{POSTS}/{announcement['id']}", json={"pinned_until": None}, headers=auth(root)
    )
    assert unpinned.status_code == 200 and unpinned.json()["pinned"] is False
    home = (await suite.client.get("/api/v1/timelines/home", headers=auth(bob))).json()["items"]
    assert [p["body"] for p in home] == ["my own news"]
    # a personal ctx on a professional persona is not a token at all (401), whatever its roles
    personal = sign(suite.keys.active, claims(ada_id, roles=["admin"], ctx="personal"))
    hidden = await suite.client.get(f"{POSTS}/{announcement['id']}", headers=auth(personal))
    assert hidden.status_code == 401


async def test_group_owner_pins_lead_the_group_timeline(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"})
    first = await post(suite.client, bob, "first", audience="group", group_id=group)
    await post(suite.client, bob, "second", audience="group", group_id=group)
    assert (await suite.client.put(f"{POSTS}/{first['id']}/pin", headers=auth(bob))).status_code == 403
    pinned = await suite.client.put(f"{POSTS}/{first['id']}/pin", headers=auth(ada))
    assert pinned.status_code == 200 and pinned.json()["pinned"] is True
    timeline = await suite.client.get(f"/api/v1/timelines/groups/{group}", headers=auth(bob))
    assert [p["body"] for p in timeline.json()["items"]] == ["first", "second"]
    plain = await post(suite.client, ada, "not in a group")
    # not a group post: the post's state forbids it (409), the request itself is fine
    assert (await suite.client.put(f"{POSTS}/{plain['id']}/pin", headers=auth(ada))).status_code == 409
    await suite.client.delete(f"{POSTS}/{first['id']}/pin", headers=auth(ada))
    timeline = await suite.client.get(f"/api/v1/timelines/groups/{group}", headers=auth(bob))
    assert [p["body"] for p in timeline.json()["items"]] == ["second", "first"]


async def test_only_announcers_change_pinned_until(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    created = await post(suite.client, ada, "news")
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    mine = await suite.client.patch(
        f"{POSTS}/{created['id']}", json={"pinned_until": until}, headers=auth(ada)
    )
    assert mine.status_code == 403
    comms = token_with_roles(suite, ada_id, "communications")
    pinned = await suite.client.patch(
        f"{POSTS}/{created['id']}", json={"pinned_until": until}, headers=auth(comms)
    )
    assert pinned.status_code == 200 and pinned.json()["pinned"] is True
    assert (await suite.client.get("/api/v1/timelines/home", headers=auth(bob))).json()["items"][0][
        "body"
    ] == "news"


async def test_deleting_a_post_leaves_no_copy_of_its_text(suite):
    from sqlalchemy import select

    from services.feed.models import IdempotencyKey, PostRevision

    ((ada, _),) = await people(suite, "ada")
    headers = {**auth(ada), "Idempotency-Key": "gone"}
    created = (await suite.client.post(POSTS, json={"body": "private words"}, headers=headers)).json()
    await suite.client.patch(f"{POSTS}/{created['id']}", json={"body": "more words"}, headers=auth(ada))
    assert (await suite.client.delete(f"{POSTS}/{created['id']}", headers=auth(ada))).status_code == 204
    async with suite.feed.state.database.sessionmaker() as session:
        assert (await session.execute(select(IdempotencyKey))).all() == []
        assert (await session.execute(select(PostRevision))).all() == []
    history = await suite.client.get(f"{POSTS}/{created['id']}/history", headers=auth(ada))
    assert history.status_code == 404


async def test_a_post_and_a_comment_read_their_authors_replica_once(suite):
    """The answer and the event's content both name the author: one read of the writer each
    write, not one for each; a comment reads it with its post, a group post with the group
    (decision 0054)."""
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "member"})
    for token in (ada, bob):  # each persona's first request checks it (cached after)
        assert (await suite.client.get("/api/v1/timelines/home", headers=auth(token))).status_code == 200

    def author_reads(seen: list[tuple[str, Any]]) -> int:
        return sum(statement.lstrip().startswith("SELECT persona_replica.") for statement, _ in seen)

    def writer_reads(seen: list[tuple[str, Any]], start: str) -> int:
        return sum(s.lstrip().startswith(start) and "writer_handle" in s for s, _ in seen)

    with statements(suite) as seen:
        made = await post(suite.client, ada, "Sharing the quarterly figures.")
    assert made["author"]["handle"] == "ada"
    assert author_reads(seen) == 0 and writer_reads(seen, "SELECT (SELECT persona_replica.") == 1, seen
    with statements(suite) as seen:
        grouped = await post(suite.client, ada, "For the group.", audience="group", group_id=group)
    assert grouped["author"]["handle"] == "ada"
    assert author_reads(seen) == 0 and writer_reads(seen, "SELECT group_replica.") == 1, seen
    assert sum("writer_handle" in s for s, _ in seen) == 1, seen
    with statements(suite) as seen:
        resp = await suite.client.post(
            f"/api/v1/posts/{made['id']}/comments", json={"body": "Thank you."}, headers=auth(bob)
        )
    assert resp.status_code == 201, resp.text
    assert resp.json()["author"]["handle"] == "bob"
    assert author_reads(seen) == 0 and writer_reads(seen, "SELECT post.id") == 1, seen
    assert sum("writer_handle" in s for s, _ in seen) == 1, seen
    async with suite.feed.state.database.sessionmaker() as session:
        event = (
            await session.execute(
                text("SELECT data FROM outbox_event WHERE type = 'comment.created' ORDER BY seq DESC LIMIT 1")
            )
        ).scalar_one()
    assert json.loads(event)["content"]["author_handle"] == "bob"
    async with suite.feed.state.database.sessionmaker() as session:
        posted = (
            await session.execute(
                text("SELECT data FROM outbox_event WHERE type = 'post.created' AND subject = :post"),
                {"post": made["id"]},
            )
        ).scalar_one()
    assert json.loads(posted)["content"]["author_handle"] == "ada"


async def test_a_group_post_reads_the_group_and_the_membership_in_one_statement(suite):
    """Posting to a group and reading it check feed's replicas of the group and of the
    caller's membership: one statement for both (the post's locks the group's row, shared)."""
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "member"})
    for token in (ada, bob):  # each persona's first request checks it (cached after)
        assert (await suite.client.get("/api/v1/timelines/home", headers=auth(token))).status_code == 200

    def reads(seen: list[tuple[str, Any]]) -> list[str]:
        return [s for s, _ in seen if s.startswith(("SELECT group_replica.", "SELECT membership_replica."))]

    with statements(suite) as seen:
        await post(suite.client, ada, "For the group.", audience="group", group_id=group)
    assert len(reads(seen)) == 1, reads(seen)
    with statements(suite) as seen:
        listed = await suite.client.get(f"/api/v1/timelines/groups/{group}", headers=auth(ada))
    assert [p["body"] for p in listed.json()["items"]] == ["For the group."]
    assert len(reads(seen)) == 1, reads(seen)
    outsider = await suite.client.post(
        "/api/v1/posts", json={"body": "No.", "audience": "group", "group_id": group}, headers=auth(bob)
    )
    assert outsider.status_code == 404
