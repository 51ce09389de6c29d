"""Feed applies moderation's actions (decision 0032) from its events: hidden, removed, restored
and released posts and comments, locks, limits, moderated groups and the held-content terms;
ignores late events; holds content that matches a term; and answers moderation's lookups at
filing. Moderation's events are delivered straight to feed, as its relay would send them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from services.feed.events import HeldContent
from services.feed.models import Comment, Post, PostRevision, PostTag, outbox_tables
from services.feed.posting import post_event
from tests.feed.support import (
    follow,
    group_data,
    make_group,
    moderate,
    people,
    post,
    send_events,
    set_persona_status,
    token_with_roles,
)
from tests.helpers import auth, with_personal

POSTS = "/api/v1/posts"
HOME = "/api/v1/timelines/home"
ORGANISATION = "/api/v1/timelines/organisation"


async def _events(suite: Any, event_type: str) -> list[tuple[str, dict[str, Any]]]:
    """Feed's published events of ``event_type``, oldest first: (subject, data)."""
    table = outbox_tables.event
    async with suite.feed.state.database.sessionmaker() as session:
        rows = await session.execute(
            select(table.c.subject, table.c.data).where(table.c.type == event_type).order_by(table.c.seq)
        )
        return [(subject, json.loads(data)) for subject, data in rows]


async def _get(suite: Any, token: str, path: str, **params: Any) -> httpx.Response:
    resp: httpx.Response = await suite.client.get(path, params=params, headers=auth(token))
    return resp


async def _ids(suite: Any, token: str, path: str, **params: Any) -> list[str]:
    resp = await _get(suite, token, path, **params)
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


async def _comment(suite: Any, token: str, post_id: str, body: str, **fields: Any) -> httpx.Response:
    resp: httpx.Response = await suite.client.post(
        f"{POSTS}/{post_id}/comments", json={"body": body, **fields}, headers=auth(token)
    )
    return resp


async def _notified(suite: Any, token: str) -> list[tuple[str, str | None]]:
    """The reader's notifications: (kind, comment id)."""
    resp = await _get(suite, token, "/api/v1/notifications")
    assert resp.status_code == 200, resp.text
    return [(n["kind"], n["comment_id"]) for n in resp.json()["items"]]


async def _row(suite: Any, model: Any, item_id: str) -> Any:
    async with suite.feed.state.database.sessionmaker() as session:
        return await session.get(model, uuid.UUID(item_id))


async def _terms(
    suite: Any, version: int, *terms: tuple[str, str], context: str = "professional"
) -> list[str]:
    """Sends a context's whole term set at ``version``; returns the terms' ids."""
    ids = [str(uuid.uuid4()) for _ in terms]
    data = {
        "context": context,
        "version": version,
        "terms": [{"id": i, "term": t, "match": m} for i, (t, m) in zip(ids, terms, strict=True)],
    }
    await send_events(suite, ("internal.moderation.terms", context, data), source="moderation")
    return ids


# Posts: hidden, removed, restored -----------------------------------------------------------------


async def test_a_hidden_post_is_its_authors_alone_marked_hidden_until_restored(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    await follow(suite.client, bob, ada_id)
    said = await post(suite.client, ada, "a hidden thought")
    await moderate(suite, "moderation.content.hidden", "post", said["id"], subject_id=ada_id)
    assert (await _get(suite, bob, f"{POSTS}/{said['id']}")).status_code == 404
    assert said["id"] not in await _ids(suite, bob, HOME)
    mine = await _get(suite, ada, f"{POSTS}/{said['id']}")
    assert mine.status_code == 200 and mine.json()["moderation"] == "hidden"
    assert said["id"] in await _ids(suite, ada, HOME)
    assert await _events(suite, "post.restored") == []

    await moderate(suite, "moderation.content.restored", "post", said["id"], subject_id=ada_id)
    seen = await _get(suite, bob, f"{POSTS}/{said['id']}")
    assert seen.status_code == 200 and seen.json()["moderation"] is None
    assert said["id"] in await _ids(suite, bob, HOME)
    assert await _events(suite, "post.restored") == [
        (said["id"], (await _events(suite, "post.created"))[0][1])
    ]


async def test_a_removed_post_is_gone_for_everyone_but_kept_and_comes_back_on_restore(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    await follow(suite.client, bob, ada_id)
    said = await post(suite.client, ada, "first #kept")
    resp = await suite.client.patch(f"{POSTS}/{said['id']}", json={"body": "second #kept"}, headers=auth(ada))
    assert resp.status_code == 200, resp.text
    for token in (ada, bob):
        assert said["id"] in await _ids(suite, token, HOME)  # inboxes built (PostgreSQL)
    await moderate(suite, "moderation.content.removed", "post", said["id"], subject_id=ada_id)
    for token in (ada, bob):
        assert (await _get(suite, token, f"{POSTS}/{said['id']}")).status_code == 404
        assert said["id"] not in await _ids(suite, token, HOME)
    stored = await _row(suite, Post, said["id"])
    assert stored.deleted_at is not None and stored.moderation == "removed"
    assert stored.body == "second #kept" and stored.tags == ["kept"]
    async with suite.feed.state.database.sessionmaker() as session:
        revisions = (await session.scalars(select(col(PostRevision.body)))).all()
        tags = (await session.scalars(select(col(PostTag.tag)))).all()
    assert revisions == ["first #kept"] and tags == ["kept"]
    assert [subject for subject, _ in await _events(suite, "post.deleted")] == [said["id"]]

    # Ada follows Cyd now: her inbox, built again, is filled while the post is removed
    ((_, cyd_id),) = await people(suite, "cyd")
    await follow(suite.client, ada, cyd_id)
    assert said["id"] not in await _ids(suite, ada, HOME)
    await moderate(suite, "moderation.content.restored", "post", said["id"], subject_id=ada_id)
    for token in (ada, bob):
        assert said["id"] in await _ids(suite, token, HOME)
        assert said["id"] in await _ids(suite, token, "/api/v1/timelines/tags/kept")
    assert (await _row(suite, Post, said["id"])).deleted_at is None
    assert [subject for subject, _ in await _events(suite, "post.restored")] == [said["id"]]


async def test_late_moderation_events_do_not_undo_newer_ones(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    said = await post(suite.client, ada, "contested")
    now = datetime.now(UTC)
    await moderate(suite, "moderation.content.hidden", "post", said["id"], time=now)
    await moderate(suite, "moderation.content.restored", "post", said["id"], time=now - timedelta(minutes=1))
    assert (await _get(suite, bob, f"{POSTS}/{said['id']}")).status_code == 404
    await moderate(suite, "moderation.post.locked", "post", said["id"], time=now - timedelta(seconds=1))
    assert (await _row(suite, Post, said["id"])).locked_at is None

    await moderate(suite, "moderation.persona.limited", "persona", bob_id, time=now)
    await moderate(suite, "moderation.persona.unlimited", "persona", bob_id, time=now - timedelta(minutes=1))
    shout = await post(suite.client, bob, "limited still")
    assert shout["id"] not in await _ids(suite, ada, ORGANISATION)

    group = await make_group(suite, {ada_id: "owner"}, visibility="open")
    grouped = await post(suite.client, ada, "in the group", audience="group", group_id=group)
    later = (now + timedelta(minutes=1)).isoformat()
    await send_events(
        suite,
        ("group.updated", group, group_data(group, visibility="open", moderation="hidden", updated_at=later)),
    )
    earlier = (now - timedelta(minutes=1)).isoformat()
    await send_events(
        suite,
        ("group.updated", group, group_data(group, visibility="open", moderation=None, updated_at=earlier)),
    )
    assert (await _get(suite, bob, f"{POSTS}/{grouped['id']}")).status_code == 404


async def test_what_its_author_deleted_stays_deleted_whatever_moderation_sends(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    said = await post(suite.client, ada, "gone by my hand")
    assert (await suite.client.delete(f"{POSTS}/{said['id']}", headers=auth(ada))).status_code == 204
    for action in ("hidden", "removed", "restored"):
        await moderate(suite, f"moderation.content.{action}", "post", said["id"], subject_id=ada_id)
    stored = await _row(suite, Post, said["id"])
    assert stored.deleted_at is not None and stored.moderation is None and stored.body == ""
    assert (await _get(suite, ada, f"{POSTS}/{said['id']}")).status_code == 404


async def test_erasure_blanks_what_moderation_removed_and_keeps_it_gone(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    removed = await post(suite.client, ada, "removed words")
    hidden = await post(suite.client, ada, "hidden words")
    await moderate(suite, "moderation.content.removed", "post", removed["id"])
    await moderate(suite, "moderation.content.hidden", "post", hidden["id"])
    await send_events(suite, ("persona.erased", ada_id, {"id": ada_id, "context": "professional"}))
    for said in (removed, hidden):
        stored = await _row(suite, Post, said["id"])
        assert stored.body == "" and stored.deleted_at is not None
    # each post is announced deleted once: the removed one when it was removed
    assert sorted(s for s, _ in await _events(suite, "post.deleted")) == sorted([removed["id"], hidden["id"]])
    await moderate(suite, "moderation.content.restored", "post", removed["id"])
    assert (await _row(suite, Post, removed["id"])).deleted_at is not None
    assert await _events(suite, "post.restored") == []


# Comments ------------------------------------------------------------------------------------------


async def test_moderating_a_comment_moves_its_counts_and_notifications(suite):
    (ada, _), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    said = await post(suite.client, ada, "discuss")
    top = (await _comment(suite, bob, said["id"], "top")).json()
    reply = (await _comment(suite, cyd, said["id"], "reply to @bob", parent_id=top["id"])).json()
    assert ("reply", reply["id"]) in await _notified(suite, bob)
    assert ("comment", reply["id"]) in await _notified(suite, ada)

    async def counts() -> tuple[int, int]:
        read = await _get(suite, ada, f"{POSTS}/{said['id']}")
        replies = await _get(suite, ada, f"{POSTS}/{said['id']}/comments/{top['id']}")
        return read.json()["comment_count"], replies.json()["reply_count"]

    assert await counts() == (2, 1)
    await moderate(suite, "moderation.content.hidden", "comment", reply["id"], post_id=said["id"])
    assert await counts() == (1, 0)
    assert all(comment_id != reply["id"] for _, comment_id in await _notified(suite, bob))
    listed = await _ids(suite, bob, f"{POSTS}/{said['id']}/comments", parent_id=top["id"])
    assert listed == []
    own = await _get(suite, cyd, f"{POSTS}/{said['id']}/comments/{reply['id']}")
    assert own.status_code == 200 and own.json()["moderation"] == "hidden"

    await moderate(suite, "moderation.content.removed", "comment", reply["id"], post_id=said["id"])
    assert await counts() == (1, 0)  # not lowered twice
    assert (await _get(suite, cyd, f"{POSTS}/{said['id']}/comments/{reply['id']}")).status_code == 404
    assert (await _row(suite, Comment, reply["id"])).body == "reply to @bob"
    assert [d["id"] for _, d in await _events(suite, "comment.deleted")] == [reply["id"]]

    await moderate(suite, "moderation.content.restored", "comment", reply["id"], post_id=said["id"])
    assert await counts() == (2, 1)
    assert await _ids(suite, bob, f"{POSTS}/{said['id']}/comments", parent_id=top["id"]) == [reply["id"]]
    restored = await _events(suite, "comment.restored")
    created = [d for _, d in await _events(suite, "comment.created") if d["id"] == reply["id"]]
    assert [(s, d) for s, d in restored] == [(said["id"], created[0])]
    # its author deleting it while hidden lowers the counts once
    await moderate(suite, "moderation.content.hidden", "comment", reply["id"], post_id=said["id"])
    path = f"{POSTS}/{said['id']}/comments/{reply['id']}"
    assert (await suite.client.delete(path, headers=auth(cyd))).status_code == 204
    assert await counts() == (1, 0)


async def test_a_locked_post_takes_no_new_comments_until_unlocked(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    said = await post(suite.client, ada, "closed for comments soon")
    top = (await _comment(suite, bob, said["id"], "before the lock")).json()
    await moderate(suite, "moderation.post.locked", "post", said["id"], subject_id=ada_id)
    assert (await _get(suite, bob, f"{POSTS}/{said['id']}")).json()["locked"] is True
    for token, fields in ((bob, {}), (ada, {}), (ada, {"parent_id": top["id"]})):
        resp = await _comment(suite, token, said["id"], "after the lock", **fields)
        assert resp.status_code == 403, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["type"].endswith("/post-locked")
    assert (await _get(suite, ada, f"{POSTS}/{said['id']}")).json()["comment_count"] == 1
    await moderate(suite, "moderation.post.unlocked", "post", said["id"], subject_id=ada_id)
    assert (await _get(suite, bob, f"{POSTS}/{said['id']}")).json()["locked"] is False
    assert (await _comment(suite, bob, said["id"], "open again")).status_code == 201


# Limits and moderated groups -------------------------------------------------------------------------


async def test_a_limited_persona_reaches_only_followers_and_groups(suite):
    (ada, ada_id), (bob, _), (cyd, cyd_id) = await people(suite, "ada", "bob", "cyd")
    await follow(suite.client, bob, ada_id)
    group = await make_group(suite, {ada_id: "member", cyd_id: "member"})
    await moderate(suite, "moderation.persona.limited", "persona", ada_id, subject_id=ada_id)
    await set_persona_status(suite, ada_id, "ada", "active")  # a profile's event keeps the limit
    loud = await post(suite.client, ada, "to everyone")
    grouped = await post(suite.client, ada, "to the group", audience="group", group_id=group)
    for token in (ada, bob, cyd):
        assert loud["id"] not in await _ids(suite, token, ORGANISATION)
    assert loud["id"] in await _ids(suite, bob, HOME)
    assert loud["id"] in await _ids(suite, ada, HOME)
    assert (await _get(suite, bob, f"{POSTS}/{loud['id']}")).status_code == 200
    assert (await _get(suite, cyd, f"{POSTS}/{loud['id']}")).status_code == 404
    assert loud["id"] not in await _ids(suite, cyd, "/api/v1/posts", q="everyone")
    assert grouped["id"] in await _ids(suite, cyd, HOME)

    await moderate(suite, "moderation.persona.unlimited", "persona", ada_id, subject_id=ada_id)
    for token in (bob, cyd):
        assert loud["id"] in await _ids(suite, token, ORGANISATION)


async def test_a_limit_for_a_persona_feed_does_not_know_yet_is_retried(suite):
    persona = str(uuid.uuid4())
    token = suite.feed.state.settings.internal_token.get_secret_value()
    event = {
        "id": str(uuid.uuid4()),
        "type": "moderation.persona.limited",
        "source": "moderation",
        "subject": persona,
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "context": "professional",
            "report_id": str(uuid.uuid4()),
            "action_id": str(uuid.uuid4()),
            "target_type": "persona",
            "target_id": persona,
            "subject_id": persona,
            "until": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        },
    }
    transport = httpx.ASGITransport(app=suite.feed, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://feed") as client:
        resp = await client.post("/internal/events", json={"events": [event]}, headers=auth(token))
    assert resp.status_code == 500  # the relay sends it again later
    table = outbox_tables.processed
    async with suite.feed.state.database.sessionmaker() as session:
        assert (await session.execute(select(table.c.id))).all() == []


async def test_a_moderated_groups_posts_are_seen_by_nobody_and_it_takes_none(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"}, visibility="open")
    grouped = await post(suite.client, ada, "group talk", audience="group", group_id=group)
    for state in ("hidden", "removed"):
        await send_events(
            suite, ("group.updated", group, group_data(group, visibility="open", moderation=state))
        )
        for token in (ada, bob):
            assert (await _get(suite, token, f"{POSTS}/{grouped['id']}")).status_code == 404
            assert grouped["id"] not in await _ids(suite, token, HOME)
        resp = await suite.client.post(
            POSTS, json={"body": "more", "audience": "group", "group_id": group}, headers=auth(ada)
        )
        assert resp.status_code == 404, resp.text
    await send_events(suite, ("group.updated", group, group_data(group, visibility="open", moderation=None)))
    for token in (ada, bob):
        assert grouped["id"] in await _ids(suite, token, HOME)
    # an event that leaves moderation out keeps it
    await send_events(
        suite, ("group.updated", group, group_data(group, visibility="open", moderation="hidden"))
    )
    data = group_data(group, visibility="open")
    del data["archived"]
    await send_events(suite, ("group.updated", group, data))
    assert (await _get(suite, bob, f"{POSTS}/{grouped['id']}")).status_code == 404


# Held content ------------------------------------------------------------------------------------------


async def test_terms_are_replaced_by_newer_sets_only(suite):
    ((ada, _),) = await people(suite, "ada")
    await _terms(suite, 2, ("casino", "literal"))
    await _terms(suite, 1, ("weather", "literal"))  # older: ignored
    assert (await post(suite.client, ada, "nice weather"))["moderation"] is None
    assert (await post(suite.client, ada, "CASINOS here"))["moderation"] == "held"
    await _terms(suite, 3, ("bet", "word"))
    assert (await post(suite.client, ada, "casino night"))["moderation"] is None
    assert (await post(suite.client, ada, "alphabet soup"))["moderation"] is None
    assert (await post(suite.client, ada, "place your Bet!"))["moderation"] == "held"
    await _terms(suite, 2, ("alphabet", "literal"), context="personal")  # another context's
    assert (await post(suite.client, ada, "alphabet soup"))["moderation"] is None


async def test_a_held_post_is_its_authors_alone_until_released(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    await follow(suite.client, bob, ada_id)
    (term,) = await _terms(suite, 1, ("Jackpot", "word"))
    held = await post(
        suite.client, ada, "@bob the jackpot!", links=[{"url": "https://x.example/win", "title": "Win"}]
    )
    assert held["moderation"] == "held"
    assert await _events(suite, "post.created") == []
    ((subject, data),) = await _events(suite, "internal.content.held")
    HeldContent.model_validate(data)
    stored = await _row(suite, Post, held["id"])
    assert subject == held["id"] and data == {
        "context": "professional",
        "item_type": "post",
        "item_id": held["id"],
        "post_id": held["id"],
        "author_id": ada_id,
        "group_id": None,
        "body": "@bob the jackpot!",
        "links": ["https://x.example/win"],
        "term_ids": [term],
        "created_at": stored.created_at.isoformat(),
    }
    assert (await _get(suite, bob, f"{POSTS}/{held['id']}")).status_code == 404
    assert held["id"] not in await _ids(suite, bob, HOME)
    assert await _notified(suite, bob) == []
    assert (await _get(suite, ada, f"{POSTS}/{held['id']}")).json()["moderation"] == "held"
    assert held["id"] in await _ids(suite, ada, HOME)
    # an edit leaves it held, and announces nothing of a post never announced
    edited = await suite.client.patch(f"{POSTS}/{held['id']}", json={"body": "@bob hi"}, headers=auth(ada))
    assert edited.status_code == 200 and edited.json()["moderation"] == "held"
    assert await _events(suite, "post.updated") == [] and await _notified(suite, bob) == []

    await moderate(suite, "moderation.content.released", "post", held["id"], subject_id=ada_id)
    assert (await _get(suite, bob, f"{POSTS}/{held['id']}")).json()["moderation"] is None
    assert held["id"] in await _ids(suite, bob, HOME)
    assert await _notified(suite, bob) == [("mention", None)]
    ((subject, announced),) = await _events(suite, "post.created")
    # released, it is told as any post to the organisation: with its text (docs/events.md)
    assert subject == held["id"] and announced == post_event(stored, announced["content"])
    assert announced["content"]["text"] == "@bob hi"  # as edited while held
    await moderate(suite, "moderation.content.released", "post", held["id"], subject_id=ada_id)
    assert len(await _events(suite, "post.created")) == 1 and len(await _notified(suite, bob)) == 1


async def test_an_edit_that_holds_a_term_holds_the_post_and_its_release_announces_nothing_new(suite):
    (ada, ada_id), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    await _terms(suite, 1, ("jackpot", "literal"))
    said = await post(suite.client, ada, "hello @bob")
    resp = await suite.client.patch(
        f"{POSTS}/{said['id']}", json={"body": "hello @bob and @cyd, jackpot"}, headers=auth(ada)
    )
    assert resp.status_code == 200 and resp.json()["moderation"] == "held"
    assert (await _get(suite, bob, f"{POSTS}/{said['id']}")).status_code == 404
    assert await _notified(suite, cyd) == []
    assert [s for s, _ in await _events(suite, "internal.content.held")] == [said["id"]]
    await moderate(suite, "moderation.content.released", "post", said["id"], subject_id=ada_id)
    assert len(await _events(suite, "post.created")) == 1  # at publishing, not again
    assert await _notified(suite, cyd) == [("mention", None)]
    assert await _notified(suite, bob) == [("mention", None)]


async def test_a_held_comment_counts_and_notifies_only_once_released(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await _terms(suite, 1, ("jackpot", "literal"))
    said = await post(suite.client, ada, "a plain post")
    resp = await _comment(suite, bob, said["id"], "Jackpot, @ada")
    assert resp.status_code == 201 and resp.json()["moderation"] == "held"
    held = resp.json()
    assert (await _get(suite, ada, f"{POSTS}/{said['id']}")).json()["comment_count"] == 0
    assert await _ids(suite, ada, f"{POSTS}/{said['id']}/comments") == []
    assert await _ids(suite, bob, f"{POSTS}/{said['id']}/comments") == [held["id"]]
    assert await _notified(suite, ada) == []
    assert await _events(suite, "comment.created") == []
    ((subject, data),) = await _events(suite, "internal.content.held")
    HeldContent.model_validate(data)
    assert subject == held["id"] and data["item_type"] == "comment" and data["post_id"] == said["id"]
    assert data["author_id"] == bob_id and data["body"] == "Jackpot, @ada" and data["links"] == []

    await moderate(suite, "moderation.content.released", "comment", held["id"], post_id=said["id"])
    assert (await _get(suite, ada, f"{POSTS}/{said['id']}")).json()["comment_count"] == 1
    assert await _ids(suite, ada, f"{POSTS}/{said['id']}/comments") == [held["id"]]
    assert await _notified(suite, ada) == [("comment", held["id"])]
    assert [s for s, _ in await _events(suite, "comment.created")] == [said["id"]]

    # an edit that holds a term holds the comment again: off the counts, its notice gone
    resp = await suite.client.patch(
        f"{POSTS}/{said['id']}/comments/{held['id']}", json={"body": "jackpot again"}, headers=auth(bob)
    )
    assert resp.status_code == 200 and resp.json()["moderation"] == "held"
    assert (await _get(suite, ada, f"{POSTS}/{said['id']}")).json()["comment_count"] == 0
    assert await _notified(suite, ada) == []
    await moderate(suite, "moderation.content.released", "comment", held["id"], post_id=said["id"])
    assert (await _get(suite, ada, f"{POSTS}/{said['id']}")).json()["comment_count"] == 1
    assert len(await _events(suite, "comment.created")) == 1


# The lookups at filing -------------------------------------------------------------------------------


async def _lookup(suite: Any, path: str, token: str | None = None, **params: Any) -> httpx.Response:
    token = token or suite.feed.state.settings.internal_token.get_secret_value()
    async with httpx.AsyncClient(transport=suite.router, base_url="http://feed") as client:
        return await client.get(path, params=params, headers=auth(token))


async def test_the_lookups_answer_what_the_reader_sees_and_404_for_the_rest(suite):
    (ada, ada_id), (bob, bob_id), (_, cyd_id) = await people(suite, "ada", "bob", "cyd")
    both = await with_personal(suite.client, "dee")
    await suite.deliver()
    said = await post(suite.client, ada, "report me", links=[{"url": "https://x.example/a"}])
    reply = (await _comment(suite, bob, said["id"], "me too")).json()
    secret = await make_group(suite, {ada_id: "owner"}, visibility="secret")
    in_secret = await post(suite.client, ada, "members only", audience="group", group_id=secret)
    hidden = await post(suite.client, ada, "hidden")
    await moderate(suite, "moderation.content.hidden", "post", hidden["id"])

    resp = await _lookup(suite, f"/internal/moderation/posts/{said['id']}", reader=bob_id)
    stored = await _row(suite, Post, said["id"])
    assert resp.status_code == 200 and resp.json() == {
        "item_type": "post",
        "item_id": said["id"],
        "post_id": said["id"],
        "author_id": ada_id,
        "context": "professional",
        "group_id": None,
        "body": "report me",
        "links": ["https://x.example/a"],
        "created_at": stored.created_at.isoformat().replace("+00:00", "Z"),
    }
    resp = await _lookup(suite, f"/internal/moderation/comments/{reply['id']}", reader=cyd_id)
    assert resp.status_code == 200, resp.text
    assert {k: resp.json()[k] for k in ("item_type", "item_id", "post_id", "author_id", "body", "links")} == {
        "item_type": "comment",
        "item_id": reply["id"],
        "post_id": said["id"],
        "author_id": bob_id,
        "body": "me too",
        "links": [],
    }
    missing = str(uuid.uuid4())
    refusals = [
        (f"/internal/moderation/posts/{missing}", bob_id),
        (f"/internal/moderation/posts/{in_secret['id']}", bob_id),
        (f"/internal/moderation/posts/{hidden['id']}", bob_id),
        (f"/internal/moderation/posts/{said['id']}", both["personal_id"]),
        (f"/internal/moderation/posts/{said['id']}", missing),
        (f"/internal/moderation/comments/{missing}", bob_id),
        (f"/internal/moderation/comments/{reply['id']}", both["personal_id"]),
        (f"/internal/moderation/comments/{said['id']}", bob_id),
    ]
    bodies = set()
    for path, reader in refusals:
        resp = await _lookup(suite, path, reader=reader)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        bodies.add(resp.json()["type"])
    assert len(bodies) == 1
    assert (
        await _lookup(suite, f"/internal/moderation/posts/{in_secret['id']}", reader=ada_id)
    ).status_code == 200
    assert (
        await _lookup(suite, f"/internal/moderation/posts/{hidden['id']}", reader=ada_id)
    ).status_code == 200

    persona_token = token_with_roles(suite, bob_id, "admin")
    for token in ("wrong", persona_token):
        resp = await _lookup(suite, f"/internal/moderation/posts/{said['id']}", token, reader=bob_id)
        assert resp.status_code == 401, resp.text
    resp = await _lookup(suite, f"/internal/moderation/posts/{said['id']}")
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("application/problem+json")
    through_gateway = await suite.client.get(
        f"/internal/moderation/posts/{said['id']}", params={"reader": bob_id}, headers=auth(bob)
    )
    assert through_gateway.status_code == 404
    assert "/internal/moderation" not in json.dumps(suite.feed.openapi())
