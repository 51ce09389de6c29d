"""Records tells feed what to destroy (``internal.records.dispose``, decision 0033): a post goes
for good with everything of it (comments, reactions, revisions, tags, notifications, stored
answers, home inbox entries), a comment or a reaction alone leaves its post with the right
counts, revisions and notifications go by age; other posts stay, a redelivery changes nothing,
other services' classes are ignored. Records' one call to feed, a persona's notifications for
its own export, pages by id behind the internal token. The events are delivered straight to
feed, as records' relay would send them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, update
from sqlmodel import col, select

from services.feed.models import (
    Comment,
    HomeEntry,
    IdempotencyKey,
    Notification,
    Post,
    PostRevision,
    PostTag,
    Reaction,
    outbox_tables,
)
from tests.feed.support import follow, people, post, send_events
from tests.helpers import auth

POSTS = "/api/v1/posts"
HOME = "/api/v1/timelines/home"
EXPORT = "/internal/records/notifications"


async def _dispose(suite: Any, data: dict[str, Any]) -> None:
    """``internal.records.dispose`` with ``data``, as a new event (a new run, or records sending
    the same items again)."""
    await send_events(suite, ("internal.records.dispose", str(uuid.uuid4()), data), source="records")


async def _count(suite: Any, model: Any, *where: Any) -> int:
    async with suite.feed.state.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _published(suite: Any, event_type: str) -> list[str]:
    """Subjects of feed's published ``event_type`` events, oldest first."""
    table = outbox_tables.event
    async with suite.feed.state.database.sessionmaker() as session:
        rows = await session.scalars(
            select(table.c.subject).where(table.c.type == event_type).order_by(table.c.seq)
        )
        return list(rows.all())


async def _dead_letters(suite: Any) -> list[str]:
    table = outbox_tables.dead_letter
    async with suite.feed.state.database.sessionmaker() as session:
        return list((await session.scalars(select(table.c.type))).all())


async def _comment(suite: Any, token: str, post_id: str, body: str, **fields: Any) -> dict[str, Any]:
    headers = {**auth(token), "Idempotency-Key": str(uuid.uuid4())}
    resp = await suite.client.post(
        f"{POSTS}/{post_id}/comments", json={"body": body, **fields}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    made: dict[str, Any] = resp.json()
    return made


async def _react(suite: Any, token: str, post_id: str, kind: str) -> None:
    resp = await suite.client.put(f"{POSTS}/{post_id}/reactions/{kind}", headers=auth(token))
    assert resp.status_code == 201, resp.text


async def _post(
    suite: Any, ada: str, bob: str, cyd: str, body: str
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A post by ada with all a post can have: a link, a tag, a mention of bob, a revision,
    comments (a reply among them) with their notifications, reactions and stored answers.
    Returns its id and its comments."""
    headers = {**auth(ada), "Idempotency-Key": str(uuid.uuid4())}
    resp = await suite.client.post(
        POSTS,
        json={"body": f"{body} for @bob #records", "links": [{"url": "https://example.org/a"}]},
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    post_id = resp.json()["id"]
    edited = await suite.client.patch(
        f"{POSTS}/{post_id}", json={"body": f"{body}, edited, @bob #records"}, headers=auth(ada)
    )
    assert edited.status_code == 200
    top = await _comment(suite, bob, post_id, "a comment for @cyd")
    reply = await _comment(suite, ada, post_id, "a reply", parent_id=top["id"])
    await _react(suite, bob, post_id, "like")
    await _react(suite, cyd, post_id, "celebrate")
    return post_id, top, reply


def _is(post_id: str) -> Any:
    return uuid.UUID(post_id)


async def _everything_of(suite: Any, post_id: str) -> dict[str, int]:
    """How many rows of each kind feed holds of the post."""
    pid = _is(post_id)
    comments = select(Comment.id).where(col(Comment.post_id) == pid)
    return {
        "post": await _count(suite, Post, col(Post.id) == pid),
        "comments": await _count(suite, Comment, col(Comment.post_id) == pid),
        "reactions": await _count(suite, Reaction, col(Reaction.post_id) == pid),
        "revisions": await _count(suite, PostRevision, col(PostRevision.post_id) == pid),
        "tags": await _count(suite, PostTag, col(PostTag.post_id) == pid),
        "notifications": await _count(suite, Notification, col(Notification.post_id) == pid),
        "answers": await _count(
            suite,
            IdempotencyKey,
            (col(IdempotencyKey.resource_id) == pid) | col(IdempotencyKey.resource_id).in_(comments),
        ),
        "inbox": await _count(suite, HomeEntry, col(HomeEntry.post_id) == pid),
    }


async def test_a_disposed_post_goes_everywhere_and_others_stay(suite):
    (ada, ada_id), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    await follow(suite.client, bob, ada_id)
    gone, _, _ = await _post(suite, ada, bob, cyd, "to be disposed of")
    kept, _, _ = await _post(suite, ada, bob, cyd, "to be kept")
    home = await suite.client.get(HOME, headers=auth(bob))  # builds bob's inbox (PostgreSQL)
    assert [p["id"] for p in home.json()["items"]] == [kept, gone]
    before = await _everything_of(suite, gone)
    inbox = 1 if suite.feed.state.database.is_postgres else 0  # bob's
    assert before == {
        "post": 1,
        "comments": 2,
        "reactions": 2,
        "revisions": 1,
        "tags": 1,
        "notifications": 4,  # bob's mention, ada's comment, cyd's mention, bob's reply
        "answers": 3,
        "inbox": inbox,
    }

    await _dispose(suite, {"kind": "post", "ids": [gone]})
    assert set((await _everything_of(suite, gone)).values()) == {0}
    assert await _everything_of(suite, kept) == before
    assert (await suite.client.get(f"{POSTS}/{gone}", headers=auth(ada))).status_code == 404
    home = await suite.client.get(HOME, headers=auth(bob))
    assert [p["id"] for p in home.json()["items"]] == [kept]
    # what others knew of goes as any deletion does; records is not told
    assert await _published(suite, "post.deleted") == [gone]
    assert len(await _published(suite, "internal.records.post")) == 4  # the creations and edits

    # a redelivery (or the same items sent again) finds nothing left
    await _dispose(suite, {"kind": "post", "ids": [gone, str(uuid.uuid4())]})
    assert await _everything_of(suite, kept) == before
    assert await _published(suite, "post.deleted") == [gone]


async def test_a_post_deleted_already_or_never_announced_is_not_announced_deleted(suite):
    ((ada, _),) = await people(suite, "ada")
    said = await post(suite.client, ada, "deleted first")
    assert (await suite.client.delete(f"{POSTS}/{said['id']}", headers=auth(ada))).status_code == 204
    terms = {
        "context": "professional",
        "version": 1,
        "terms": [{"id": str(uuid.uuid4()), "term": "leak", "match": "word"}],
    }
    await send_events(suite, ("internal.moderation.terms", "professional", terms), source="moderation")
    held = await post(suite.client, ada, "a leak, held")
    comment = await suite.client.post(
        f"{POSTS}/{held['id']}/comments", json={"body": "another leak"}, headers=auth(ada)
    )
    assert comment.status_code == 201
    assert await _published(suite, "post.created") == [said["id"]]
    await _dispose(suite, {"kind": "comment", "ids": [comment.json()["id"]]})
    await _dispose(suite, {"kind": "post", "ids": [said["id"], held["id"]]})
    assert await _count(suite, Post) == 0 and await _count(suite, Comment) == 0
    assert await _published(suite, "post.deleted") == [said["id"]]
    assert await _published(suite, "comment.deleted") == []


async def test_a_thousand_posts_go_in_one_event(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    ids = [uuid.uuid4() for _ in range(1000)]
    now = datetime.now(UTC)
    async with suite.feed.state.database.sessionmaker() as session:
        session.add_all(
            Post(
                id=i,
                author_id=uuid.UUID(ada_id),
                context="professional",
                audience="organisation",
                body="x",
                created_at=now,
            )
            for i in ids
        )
        await session.commit()
    kept = await post(suite.client, ada, "kept")
    await _dispose(suite, {"kind": "post", "ids": [str(i) for i in ids]})
    assert await _count(suite, Post) == 1
    assert len(await _published(suite, "post.deleted")) == 1000
    assert (await suite.client.get(f"{POSTS}/{kept['id']}", headers=auth(ada))).status_code == 200


async def test_a_disposed_comment_goes_alone_and_its_counts_follow_once(suite):
    (ada, _), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    post_id, top, reply = await _post(suite, ada, bob, cyd, "a post")
    second = await _comment(suite, cyd, post_id, "another reply", parent_id=top["id"])
    third = await _comment(suite, cyd, post_id, "a comment")
    shown = await suite.client.get(f"{POSTS}/{post_id}", headers=auth(ada))
    assert shown.json()["comment_count"] == 4

    for _ in range(2):  # the second time changes nothing
        await _dispose(suite, {"kind": "comment", "ids": [top["id"], second["id"]]})
        ids = {str(i) for i in (await _scalars(suite, select(Comment.id)))}
        assert ids == {reply["id"], third["id"]}  # the reply whose parent went stays
        shown = await suite.client.get(f"{POSTS}/{post_id}", headers=auth(ada))
        assert shown.json()["comment_count"] == 2
        assert await _count(suite, Notification, col(Notification.comment_id) == _is(top["id"])) == 0
        assert await _count(suite, IdempotencyKey, col(IdempotencyKey.resource_id) == _is(top["id"])) == 0
    # the post and its own notifications stay
    assert await _count(suite, Notification, col(Notification.comment_id).is_(None)) == 1  # bob's mention
    assert sorted(await _published(suite, "comment.deleted")) == [post_id, post_id]

    # a reply alone: off its parent's count too
    await _dispose(suite, {"kind": "comment", "ids": [reply["id"]]})
    async with suite.feed.state.database.sessionmaker() as session:
        assert (await session.get(Post, _is(post_id))).comment_count == 1


async def _scalars(suite: Any, query: Any) -> list[Any]:
    async with suite.feed.state.database.sessionmaker() as session:
        return list((await session.scalars(query)).all())


async def test_a_reply_disposed_of_lowers_its_parents_count(suite):
    (ada, _), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    post_id, top, reply = await _post(suite, ada, bob, cyd, "a post")
    await _dispose(suite, {"kind": "comment", "ids": [reply["id"]]})
    await _dispose(suite, {"kind": "comment", "ids": [reply["id"]]})
    async with suite.feed.state.database.sessionmaker() as session:
        assert (await session.get(Comment, _is(top["id"]))).reply_count == 0
        assert (await session.get(Post, _is(post_id))).comment_count == 1


async def test_disposed_reactions_go_and_their_counts_follow_once(suite):
    (ada, _), (bob, bob_id), (cyd, cyd_id) = await people(suite, "ada", "bob", "cyd")
    post_id, _, _ = await _post(suite, ada, bob, cyd, "a post")
    await _react(suite, cyd, post_id, "like")
    data = {
        "kind": "reaction",
        "reactions": [
            {"post_id": post_id, "persona_id": bob_id, "kind": "like"},
            {"post_id": post_id, "persona_id": cyd_id, "kind": "like"},
            {"post_id": post_id, "persona_id": bob_id, "kind": "celebrate"},  # never made
        ],
    }
    for _ in range(2):
        await _dispose(suite, data)
        async with suite.feed.state.database.sessionmaker() as session:
            left = [
                (str(p), k)
                for p, k in (await session.execute(select(Reaction.persona_id, Reaction.kind))).all()
            ]
        assert left == [(cyd_id, "celebrate")]
        reactions = (await suite.client.get(f"{POSTS}/{post_id}", headers=auth(ada))).json()["reactions"]
        assert reactions["counts"]["like"] == 0 and reactions["counts"]["celebrate"] == 1
    assert len(await _published(suite, "reaction.removed")) == 2


async def test_revisions_before_the_cut_off_go_and_later_ones_stay(suite):
    (ada, _), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    post_id, _, _ = await _post(suite, ada, bob, cyd, "a post")
    other, _, _ = await _post(suite, ada, bob, cyd, "another post")
    resp = await suite.client.patch(f"{POSTS}/{post_id}", json={"body": "third text"}, headers=auth(ada))
    assert resp.status_code == 200
    now = datetime.now(UTC)
    _, recent = await _scalars(
        suite,
        select(PostRevision.id)
        .where(col(PostRevision.post_id) == _is(post_id))
        .order_by(col(PostRevision.id)),
    )
    async with suite.feed.state.database.sessionmaker() as session:
        await session.execute(update(PostRevision).values(created_at=now - timedelta(days=10)))
        await session.execute(
            update(PostRevision)
            .where(col(PostRevision.id) == recent)
            .values(created_at=now - timedelta(days=1))
        )
        await session.commit()
    cut = (now - timedelta(days=5)).isoformat()
    for _ in range(2):
        await _dispose(suite, {"kind": "revisions", "post_ids": [post_id], "before": cut})
        assert await _scalars(
            suite, select(PostRevision.id).where(col(PostRevision.post_id) == _is(post_id))
        ) == [recent]
    # the post stays as it is, and so do other posts' revisions
    assert (await suite.client.get(f"{POSTS}/{post_id}", headers=auth(ada))).json()["body"] == "third text"
    assert await _count(suite, PostRevision, col(PostRevision.post_id) == _is(other)) == 1


async def test_notifications_before_the_cut_off_go_in_batches(suite):
    (ada, ada_id), (bob, bob_id), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    post_id, _, _ = await _post(suite, ada, bob, cyd, "a post")
    recent = await _count(suite, Notification)
    old = datetime.now(UTC) - timedelta(days=30)
    async with suite.feed.state.database.sessionmaker() as session:
        session.add_all(
            Notification(
                persona_id=uuid.UUID(bob_id),
                kind="mention",
                actor_id=uuid.UUID(ada_id),
                post_id=_is(post_id),
                created_at=old,
            )
            for _ in range(1001)  # more than one batch
        )
        await session.commit()
    cut = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    await _dispose(suite, {"class": "notifications", "before": cut})
    assert await _count(suite, Notification) == recent
    await _dispose(suite, {"class": "notifications", "before": cut})
    assert await _count(suite, Notification) == recent


async def test_other_services_classes_and_unknown_kinds_are_ignored_and_bad_ones_dead_lettered(suite):
    (ada, _), (bob, _), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    post_id, _, _ = await _post(suite, ada, bob, cyd, "a post")
    before = await _everything_of(suite, post_id)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for data in (
        {"class": "audit_log", "before": future},
        {"class": "webhook_deliveries", "before": future},
        {"class": "group_health", "before": future},
        {"kind": "group", "ids": [post_id]},
    ):
        await _dispose(suite, data)
    assert await _everything_of(suite, post_id) == before
    assert await _dead_letters(suite) == []
    for data in (
        {"kind": "post", "ids": ["not an id"]},
        {"kind": "post", "ids": [str(uuid.uuid4()) for _ in range(1001)]},
        {"kind": "revisions", "post_ids": [post_id]},
        {"class": "notifications"},
    ):
        await _dispose(suite, data)
    assert await _everything_of(suite, post_id) == before
    assert await _dead_letters(suite) == ["internal.records.dispose"] * 4


# Records' call: a persona's notifications ------------------------------------------------------


async def _export(suite: Any, token: str | None, **params: Any) -> httpx.Response:
    headers = auth(token) if token is not None else {}
    async with httpx.AsyncClient(transport=suite.router, base_url="http://feed") as client:
        resp: httpx.Response = await client.get(EXPORT, params=params, headers=headers)
    return resp


async def test_a_personas_notifications_page_in_id_order_behind_the_token(suite):
    (ada, ada_id), (bob, bob_id), _ = await people(suite, "ada", "bob", "cyd")
    for i in range(5):
        await post(suite.client, ada, f"hello @bob {i}")
    await post(suite.client, ada, "hello @cyd")
    token = suite.feed.state.settings.internal_token.get_secret_value()
    notes = await _scalars(
        suite,
        select(Notification)
        .where(col(Notification.persona_id) == uuid.UUID(bob_id))
        .order_by(col(Notification.id)),
    )
    assert len(notes) == 5

    seen: list[dict[str, Any]] = []
    after = None
    pages = 0
    while True:
        resp = await _export(suite, token, persona_id=bob_id, limit=2, **({"after": after} if after else {}))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body["items"]) <= 2
        seen += body["items"]
        pages += 1
        after = body["next"]
        if after is None:
            break
    assert pages == 3
    assert [n["id"] for n in seen] == [str(n.id) for n in notes]
    first = seen[0]
    assert first == {
        "id": str(notes[0].id),
        "persona_id": bob_id,
        "kind": "mention",
        "post_id": str(notes[0].post_id),
        "comment_id": None,
        "actor_id": ada_id,
        "created_at": first["created_at"],
        "read_at": None,
    }
    assert datetime.fromisoformat(first["created_at"]) == notes[0].created_at

    # read ones too, and those of posts deleted since: it is the persona's own data
    assert (
        await suite.client.post("/api/v1/notifications/read", json={"all": True}, headers=auth(bob))
    ).status_code == 200
    whole = (await _export(suite, token, persona_id=bob_id, limit=1000)).json()
    assert len(whole["items"]) == 5 and whole["next"] is None and all(n["read_at"] for n in whole["items"])
    nobody = await _export(suite, token, persona_id=str(uuid.uuid4()))
    assert nobody.status_code == 200 and nobody.json() == {"items": [], "next": None}


async def test_the_notifications_call_refuses_without_the_token_and_bad_input(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    token = suite.feed.state.settings.internal_token.get_secret_value()
    assert (await _export(suite, None, persona_id=ada_id)).status_code == 401
    assert (await _export(suite, ada, persona_id=ada_id)).status_code == 401  # a persona's token
    for params in (
        {"persona_id": ada_id, "limit": 0},
        {"persona_id": ada_id, "limit": 1001},
        {"persona_id": ada_id, "limit": "many"},
        {"persona_id": "nobody"},
        {"persona_id": ada_id, "after": "nothing"},
        {},
    ):
        resp = await _export(suite, token, **params)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert "/internal/records/notifications" not in json.dumps(suite.feed.openapi())
