"""Feed tells records every change of its content (decision 0033): ``internal.records.post``,
``.comment`` and ``.reaction``, written to the outbox in the transaction of the change, with the
item's whole state, its text when the text is new or changed and never with a deletion. Read
here from feed's outbox, as records would receive them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.feed.events import CommentRecord, PostRecord, ReactionRecord
from services.feed.models import Post, outbox_tables
from tests.feed.support import (
    make_group,
    moderate,
    people,
    post,
    send_events,
    statements,
    token_with_roles,
)
from tests.helpers import auth

POSTS = "/api/v1/posts"
POST_KEYS = {
    "id",
    "author_id",
    "context",
    "audience",
    "group_id",
    "created_at",
    "change",
    "at",
    "deleted_at",
    "moderation",
}
POST_TEXT_KEYS = POST_KEYS | {"body", "lang", "links", "mentions", "tags"}
COMMENT_KEYS = {
    "id",
    "post_id",
    "parent_id",
    "author_id",
    "context",
    "group_id",
    "created_at",
    "change",
    "at",
    "deleted_at",
    "moderation",
}
COMMENT_TEXT_KEYS = COMMENT_KEYS | {"body", "lang", "mentions"}
REACTION_KEYS = {"post_id", "persona_id", "kind", "context", "group_id", "change", "at"}
MODELS: dict[str, Any] = {
    "internal.records.post": PostRecord,
    "internal.records.comment": CommentRecord,
    "internal.records.reaction": ReactionRecord,
}


async def _records(suite: Any, kind: str, subject: str | None = None) -> list[dict[str, Any]]:
    """The data of feed's ``internal.records.<kind>`` events (about ``subject``), oldest first;
    each matches its model, and its subject is the item's (a reaction's: the post's)."""
    table = outbox_tables.event
    event_type = f"internal.records.{kind}"
    query = select(table.c.subject, table.c.data).where(table.c.type == event_type)
    if subject is not None:
        query = query.where(table.c.subject == subject)
    async with suite.feed.state.database.sessionmaker() as session:
        rows = (await session.execute(query.order_by(table.c.seq))).all()
    found = []
    for row_subject, raw in rows:
        data = json.loads(raw)
        MODELS[event_type].model_validate(data)
        assert row_subject == (data["post_id"] if kind == "reaction" else data["id"])
        found.append(data)
    return found


async def _types(suite: Any) -> list[str]:
    table = outbox_tables.event
    async with suite.feed.state.database.sessionmaker() as session:
        return list((await session.scalars(select(table.c.type).order_by(table.c.seq))).all())


async def _terms(suite: Any, *terms: str) -> None:
    data = {
        "context": "professional",
        "version": 1,
        "terms": [{"id": str(uuid.uuid4()), "term": term, "match": "word"} for term in terms],
    }
    await send_events(suite, ("internal.moderation.terms", "professional", data), source="moderation")


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value  # with its offset
    return parsed


def _recent(value: str) -> None:
    assert abs(datetime.now(UTC) - _time(value)) < timedelta(minutes=1), value


# Posts ---------------------------------------------------------------------------------------


async def test_a_new_post_is_recorded_whole_with_its_text(suite):
    (ada, ada_id), (_, bob_id) = await people(suite, "ada", "bob")
    link = {"url": "https://example.org/plan", "title": "The plan"}
    said = await post(suite.client, ada, "Hello @bob about #Budget and #plans", links=[link])
    (record,) = await _records(suite, "post", said["id"])
    assert set(record) == POST_TEXT_KEYS
    assert record["change"] == "created"
    assert record["author_id"] == ada_id and record["context"] == "professional"
    assert record["audience"] == "organisation" and record["group_id"] is None
    assert record["body"] == "Hello @bob about #Budget and #plans"
    assert record["links"] == [link]
    assert record["mentions"] == [bob_id]
    assert record["tags"] == ["budget", "plans"]
    assert record["deleted_at"] is None and record["moderation"] is None
    assert _time(record["at"]) == _time(record["created_at"]) == _time(said["created_at"])


async def test_a_group_post_is_recorded_with_its_group(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    group = await make_group(suite, {ada_id: "owner"})
    said = await post(suite.client, ada, "to the group", audience="group", group_id=group)
    (record,) = await _records(suite, "post", said["id"])
    assert record["audience"] == "group" and record["group_id"] == group


async def test_a_new_post_costs_no_more_outbox_statements_than_before(suite):
    """The records event goes with ``post.created`` in one ``publish_many``: on PostgreSQL one
    statement for the events and their deliveries (decision 0049); on SQLite one insert of
    deliveries and one of events a row (its multi-row RETURNING keeps no order). Two publishes
    would be two statements, or four inserts."""
    ((ada, _),) = await people(suite, "ada")
    with statements(suite) as seen:
        said = await post(suite.client, ada, "one post")
    inserts = [s for s, _ in seen if "INSERT INTO OUTBOX_" in s.upper()]
    assert len(inserts) == (1 if suite.feed.state.database.is_postgres else 3), inserts
    assert await _types(suite) == ["post.created", "internal.records.post"]
    assert len(await _records(suite, "post", said["id"])) == 1


async def test_a_held_post_is_recorded_held_with_its_text(suite):
    ((ada, _),) = await people(suite, "ada")
    await _terms(suite, "leak")
    said = await post(suite.client, ada, "this is a leak")
    (record,) = await _records(suite, "post", said["id"])
    assert record["change"] == "created" and record["moderation"] == "held"
    assert record["body"] == "this is a leak"
    await moderate(suite, "moderation.content.released", "post", said["id"])
    released = (await _records(suite, "post", said["id"]))[-1]
    assert set(released) == POST_KEYS
    assert released["change"] == "moderated" and released["moderation"] is None


async def test_an_edit_is_recorded_with_the_new_text_and_a_pin_or_no_change_is_not(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    said = await post(suite.client, ada, "first words #one")
    resp = await suite.client.patch(
        f"{POSTS}/{said['id']}",
        json={"body": "second words #two", "links": [{"url": "https://example.org/x"}]},
        headers=auth(ada),
    )
    assert resp.status_code == 200, resp.text
    created, edited = await _records(suite, "post", said["id"])
    assert set(edited) == POST_TEXT_KEYS
    assert edited["change"] == "edited" and edited["body"] == "second words #two"
    assert edited["tags"] == ["two"] and edited["links"] == [{"url": "https://example.org/x", "title": None}]
    assert _time(edited["at"]) > _time(created["at"])
    _recent(edited["at"])
    assert edited["created_at"] == created["created_at"]

    same = await suite.client.patch(
        f"{POSTS}/{said['id']}", json={"body": "second words #two"}, headers=auth(ada)
    )
    assert same.status_code == 200
    announcer = token_with_roles(suite, ada_id, "communications")
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    pinned = await suite.client.patch(
        f"{POSTS}/{said['id']}", json={"pinned_until": until}, headers=auth(announcer)
    )
    assert pinned.status_code == 200, pinned.text
    assert len(await _records(suite, "post", said["id"])) == 2


async def test_an_edit_that_holds_a_term_is_recorded_held(suite):
    ((ada, _),) = await people(suite, "ada")
    await _terms(suite, "leak")
    said = await post(suite.client, ada, "all fine")
    resp = await suite.client.patch(f"{POSTS}/{said['id']}", json={"body": "now a leak"}, headers=auth(ada))
    assert resp.status_code == 200
    edited = (await _records(suite, "post", said["id"]))[-1]
    assert edited["change"] == "edited" and edited["moderation"] == "held" and edited["body"] == "now a leak"


async def test_a_deletion_is_recorded_without_text(suite):
    ((ada, _),) = await people(suite, "ada")
    said = await post(suite.client, ada, "soon gone #tag")
    assert (await suite.client.delete(f"{POSTS}/{said['id']}", headers=auth(ada))).status_code == 204
    deleted = (await _records(suite, "post", said["id"]))[-1]
    assert set(deleted) == POST_KEYS
    assert deleted["change"] == "deleted"
    assert deleted["deleted_at"] is not None and _time(deleted["deleted_at"]) == _time(deleted["at"])
    assert deleted["audience"] == "organisation" and deleted["created_at"] is not None


async def test_moderation_changes_are_recorded_and_a_restore_of_a_removed_post_carries_its_text(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    said = await post(suite.client, ada, "contested words")
    await moderate(suite, "moderation.content.hidden", "post", said["id"], subject_id=ada_id)
    await moderate(suite, "moderation.content.restored", "post", said["id"], subject_id=ada_id)
    await moderate(suite, "moderation.content.removed", "post", said["id"], subject_id=ada_id)
    await moderate(suite, "moderation.content.restored", "post", said["id"], subject_id=ada_id)
    _, hidden, shown, removed, restored = await _records(suite, "post", said["id"])
    assert set(hidden) == POST_KEYS and (hidden["change"], hidden["moderation"]) == ("moderated", "hidden")
    # a hidden post kept its text all along: its restore brings no text
    assert set(shown) == POST_KEYS and (shown["change"], shown["moderation"]) == ("restored", None)
    assert set(removed) == POST_KEYS and (removed["change"], removed["moderation"]) == (
        "moderated",
        "removed",
    )
    assert removed["deleted_at"] is not None
    assert set(restored) == POST_TEXT_KEYS and restored["change"] == "restored"
    assert restored["body"] == "contested words" and restored["deleted_at"] is None
    # a lock is no change of the content
    await moderate(suite, "moderation.post.locked", "post", said["id"], subject_id=ada_id)
    assert len(await _records(suite, "post", said["id"])) == 5


async def test_a_groups_deletion_records_each_of_its_posts_deleted(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    group = await make_group(suite, {ada_id: "owner"})
    said = [
        await post(suite.client, ada, f"in the group {i}", audience="group", group_id=group) for i in range(3)
    ]
    elsewhere = await post(suite.client, ada, "not in the group")
    await send_events(suite, ("group.deleted", group, {"id": group}))
    for item in said:
        deleted = (await _records(suite, "post", item["id"]))[-1]
        assert set(deleted) == POST_KEYS and deleted["change"] == "deleted" and deleted["group_id"] == group
    assert [r["change"] for r in await _records(suite, "post", elsewhere["id"])] == ["created"]


# Comments ------------------------------------------------------------------------------------


async def _comment(suite: Any, token: str, post_id: str, body: str, **fields: Any) -> dict[str, Any]:
    resp = await suite.client.post(
        f"{POSTS}/{post_id}/comments", json={"body": body, **fields}, headers=auth(token)
    )
    assert resp.status_code == 201, resp.text
    made: dict[str, Any] = resp.json()
    return made


async def test_comments_are_recorded_at_creation_edit_and_deletion(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner", bob_id: "member"})
    said = await post(suite.client, ada, "a group post", audience="group", group_id=group)
    top = await _comment(suite, bob, said["id"], "a comment for @ada")
    reply = await _comment(suite, ada, said["id"], "a reply", parent_id=top["id"])
    (created,) = await _records(suite, "comment", top["id"])
    assert set(created) == COMMENT_TEXT_KEYS
    assert created["change"] == "created" and created["body"] == "a comment for @ada"
    assert created["mentions"] == [ada_id] and created["author_id"] == bob_id
    assert created["post_id"] == said["id"] and created["parent_id"] is None
    assert created["context"] == "professional" and created["group_id"] == group
    assert _time(created["at"]) == _time(created["created_at"])
    (reply_created,) = await _records(suite, "comment", reply["id"])
    assert reply_created["parent_id"] == top["id"]

    path = f"{POSTS}/{said['id']}/comments/{top['id']}"
    assert (await suite.client.patch(path, json={"body": "edited"}, headers=auth(bob))).status_code == 200
    edited = (await _records(suite, "comment", top["id"]))[-1]
    assert set(edited) == COMMENT_TEXT_KEYS
    assert edited["change"] == "edited" and edited["body"] == "edited" and edited["mentions"] == []
    # the same text again is no change
    assert (await suite.client.patch(path, json={"body": "edited"}, headers=auth(bob))).status_code == 200
    assert len(await _records(suite, "comment", top["id"])) == 2

    assert (await suite.client.delete(path, headers=auth(bob))).status_code == 204
    # a top-level comment takes its replies with it: both are recorded deleted, without text
    for comment_id in (top["id"], reply["id"]):
        deleted = (await _records(suite, "comment", comment_id))[-1]
        assert set(deleted) == COMMENT_KEYS
        assert deleted["change"] == "deleted" and deleted["deleted_at"] is not None


async def test_comment_moderation_is_recorded_and_a_removed_comments_restore_carries_its_text(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    said = await post(suite.client, ada, "a post")
    made = await _comment(suite, bob, said["id"], "a rude remark")
    for action in ("hidden", "restored", "removed", "restored"):
        await moderate(
            suite,
            f"moderation.content.{action}",
            "comment",
            made["id"],
            post_id=said["id"],
            subject_id=bob_id,
        )
    _, hidden, shown, removed, restored = await _records(suite, "comment", made["id"])
    assert set(hidden) == COMMENT_KEYS and (hidden["change"], hidden["moderation"]) == ("moderated", "hidden")
    assert set(shown) == COMMENT_KEYS and shown["change"] == "restored"
    assert (removed["change"], removed["moderation"]) == ("moderated", "removed") and removed["deleted_at"]
    assert set(restored) == COMMENT_TEXT_KEYS and restored["body"] == "a rude remark"


async def test_a_held_comment_is_recorded_held_and_its_release_moderated(suite):
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    await _terms(suite, "leak")
    said = await post(suite.client, ada, "a post")
    made = await _comment(suite, bob, said["id"], "a leak here")
    await moderate(suite, "moderation.content.released", "comment", made["id"], post_id=said["id"])
    created, released = await _records(suite, "comment", made["id"])
    assert created["moderation"] == "held" and created["body"] == "a leak here"
    assert set(released) == COMMENT_KEYS and released["moderation"] is None


# Reactions -----------------------------------------------------------------------------------


async def test_reactions_are_recorded_added_and_removed_once_each(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    said = await post(suite.client, ada, "react to this")
    path = f"{POSTS}/{said['id']}/reactions/celebrate"
    for _ in range(2):
        assert (await suite.client.put(path, headers=auth(bob))).status_code in (200, 201)
    for _ in range(2):
        assert (await suite.client.delete(path, headers=auth(bob))).status_code in (200, 204)
    added, removed = await _records(suite, "reaction", said["id"])
    for record, change in ((added, "added"), (removed, "removed")):
        assert set(record) == REACTION_KEYS
        assert record["change"] == change and record["persona_id"] == bob_id
        assert (
            record["kind"] == "celebrate"
            and record["context"] == "professional"
            and record["group_id"] is None
        )
        _recent(record["at"])
    assert _time(removed["at"]) >= _time(added["at"])


# Erasure -------------------------------------------------------------------------------------


async def test_an_erasure_records_every_post_comment_and_reaction_it_takes(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    own = await post(suite.client, ada, "ada's post")
    removed = await post(suite.client, ada, "removed by a moderator")
    await moderate(suite, "moderation.content.removed", "post", removed["id"], subject_id=ada_id)
    others = await post(suite.client, bob, "bob's post")
    made = await _comment(suite, ada, others["id"], "ada's comment")
    assert (
        await suite.client.put(f"{POSTS}/{others['id']}/reactions/like", headers=auth(ada))
    ).status_code in (
        200,
        201,
    )
    assert (
        await suite.client.put(f"{POSTS}/{others['id']}/reactions/support", headers=auth(bob))
    ).status_code in (
        200,
        201,
    )
    await send_events(suite, ("persona.erased", ada_id, {"id": ada_id, "context": "professional"}))

    for item in (own, removed):
        deleted = (await _records(suite, "post", item["id"]))[-1]
        assert set(deleted) == POST_KEYS and deleted["change"] == "deleted"
    assert (await _records(suite, "post", removed["id"]))[-1]["moderation"] == "removed"
    deleted_comment = (await _records(suite, "comment", made["id"]))[-1]
    assert set(deleted_comment) == COMMENT_KEYS and deleted_comment["change"] == "deleted"
    assert deleted_comment["post_id"] == others["id"] and deleted_comment["context"] == "professional"
    reactions = await _records(suite, "reaction", others["id"])
    assert [(r["persona_id"], r["kind"], r["change"]) for r in reactions] == [
        (ada_id, "like", "added"),
        (bob_id, "support", "added"),
        (ada_id, "like", "removed"),
    ]
    # bob's post is bob's: not recorded again
    assert [r["change"] for r in await _records(suite, "post", others["id"])] == ["created"]
    async with suite.feed.state.database.sessionmaker() as session:
        assert (await session.get(Post, uuid.UUID(others["id"]))).like_count == 0
