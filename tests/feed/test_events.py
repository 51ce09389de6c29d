"""Feed's replicas follow the other services' events, in order or late, and the visibility
rules follow the replicas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from services.feed.deletion import BATCH
from services.feed.models import IdempotencyKey, Post, outbox_tables
from tests.feed.support import bodies, group_data, make_group, membership, people, post, send_events
from tests.helpers import auth, with_personal


async def test_membership_role_changes_decide_who_moderates_and_pins(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "member", bob_id: "member"})
    created = await post(suite.client, ada, "text", audience="group", group_id=group)
    assert (
        await suite.client.put(f"/api/v1/posts/{created['id']}/pin", headers=auth(bob))
    ).status_code == 403
    await send_events(suite, ("membership.updated", group, membership(group, bob_id, "owner")))
    assert (
        await suite.client.put(f"/api/v1/posts/{created['id']}/pin", headers=auth(bob))
    ).status_code == 200
    await send_events(suite, ("membership.updated", group, membership(group, bob_id, "moderator")))
    assert (
        await suite.client.put(f"/api/v1/posts/{created['id']}/pin", headers=auth(bob))
    ).status_code == 403
    assert (await suite.client.delete(f"/api/v1/posts/{created['id']}", headers=auth(bob))).status_code == 204


async def test_late_removal_does_not_undo_a_newer_join(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    group = await make_group(suite, {})
    old = membership(group, ada_id)
    old["updated_at"] = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    await send_events(suite, ("membership.added", group, membership(group, ada_id)))
    await send_events(suite, ("membership.removed", group, old))
    await post(suite.client, ada, "still a member", audience="group", group_id=group)


async def test_skeleton_membership_payload_without_times_is_accepted(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    group = await make_group(suite, {})
    data = {"group_id": group, "persona_id": ada_id, "context": "professional", "role": "owner"}
    await send_events(suite, ("membership.added", group, data))
    await post(suite.client, ada, "ok", audience="group", group_id=group)
    await send_events(suite, ("membership.removed", group, data))
    resp = await suite.client.post(
        "/api/v1/posts", json={"body": "no", "audience": "group", "group_id": group}, headers=auth(ada)
    )
    assert resp.status_code == 404


async def test_visibility_change_and_group_deletion_apply_at_once(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner"}, visibility="open")
    await post(suite.client, ada, "open talk", audience="group", group_id=group)
    assert await bodies(suite.client, bob, f"/api/v1/timelines/groups/{group}") == ["open talk"]
    await send_events(suite, ("group.updated", group, group_data(group, visibility="secret")))
    assert (await suite.client.get(f"/api/v1/timelines/groups/{group}", headers=auth(bob))).status_code == 404
    assert await bodies(suite.client, bob, "/api/v1/posts", q="talk") == []
    await send_events(
        suite,
        (
            "group.deleted",
            group,
            {"id": group, "context": "professional", "updated_at": datetime.now(UTC).isoformat()},
        ),
    )
    assert await bodies(suite.client, ada, "/api/v1/timelines/home") == []
    assert (await suite.client.get(f"/api/v1/timelines/groups/{group}", headers=auth(ada))).status_code == 404


async def test_stale_persona_event_is_ignored(suite):
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    await post(suite.client, ada, "hello")
    stale = datetime.now(UTC) - timedelta(days=1)
    data = {
        "id": ada_id,
        "context": "professional",
        "handle": "ada",
        "display_name": "Old",
        "status": "deactivated",
        "updated_at": None,
    }
    # a persona's events are ordered by their own time, not by the profile's last edit
    await send_events(suite, ("persona.updated", ada_id, data), time=stale)
    items = (await suite.client.get("/api/v1/timelines/organisation", headers=auth(bob))).json()["items"]
    assert [p["author"]["display_name"] for p in items] == ["Ada"]


async def _deleted_events(suite) -> list[str]:
    async with suite.feed.state.database.sessionmaker() as session:
        rows = await session.execute(
            select(outbox_tables.event.c.subject)
            .where(outbox_tables.event.c.type == "post.deleted")
            .order_by(outbox_tables.event.c.seq)
        )
        return [row[0] for row in rows]


async def test_posts_removed_by_erasure_or_group_deletion_are_announced_as_deleted(suite):
    """Whoever removes a post, the other services and webhook subscribers hear
    ``post.deleted`` once per post, and no stored answer keeps its text."""
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    personal = ada["personal"]
    gone = await post(suite.client, personal, "deleted by its author")
    assert (
        await suite.client.delete(f"/api/v1/posts/{gone['id']}", headers=auth(personal))
    ).status_code == 204
    resp = await suite.client.post(
        "/api/v1/posts",
        json={"body": "holiday photos", "audience": "organisation"},
        headers={**auth(personal), "Idempotency-Key": "holiday-1"},
    )
    assert resp.status_code == 201
    first = resp.json()
    second = await post(suite.client, personal, "more photos")
    assert await _deleted_events(suite) == [gone["id"]]
    assert (
        await suite.client.delete("/api/v1/me/personas/personal", headers=auth(ada["pro"]))
    ).status_code == 204
    await suite.deliver()
    assert sorted(await _deleted_events(suite)) == sorted([gone["id"], first["id"], second["id"]])
    async with suite.feed.state.database.sessionmaker() as session:
        stored = await session.scalar(select(func.count()).select_from(IdempotencyKey))
    assert stored == 0

    (bob, bob_id), (cyd, _) = await people(suite, "bob", "cyd")
    group = await make_group(suite, {bob_id: "owner"}, visibility="open")
    in_group = await post(suite.client, bob, "group talk", audience="group", group_id=group)
    outside = await post(suite.client, bob, "organisation talk")
    await send_events(
        suite,
        (
            "group.deleted",
            group,
            {"id": group, "context": "professional", "updated_at": datetime.now(UTC).isoformat()},
        ),
    )
    deleted = await _deleted_events(suite)
    assert deleted.count(in_group["id"]) == 1 and outside["id"] not in deleted
    assert await bodies(suite.client, cyd, "/api/v1/timelines/organisation") == ["organisation talk"]


async def test_erasing_a_prolific_author_announces_every_post_in_batches(suite):
    """More posts than one batch (and each with a stored Idempotency-Key answer): all are
    announced once and forgotten, in one event delivery."""
    ((_, ada_id),) = await people(suite, "ada")
    author = uuid.UUID(ada_id)
    count = BATCH + 200
    async with suite.feed.state.database.sessionmaker() as session, session.begin():
        posts = [
            Post(author_id=author, context="professional", audience="organisation", body=f"n{i}")
            for i in range(count)
        ]
        session.add_all(posts)
        await session.flush()
        session.add_all(
            IdempotencyKey(
                persona_id=author,
                key=f"k{i}",
                fingerprint="f",
                status_code=201,
                response="{}",
                resource_id=p.id,
            )
            for i, p in enumerate(posts)
        )
    await send_events(suite, ("persona.erased", ada_id, {"id": ada_id, "context": "professional"}))
    deleted = await _deleted_events(suite)
    assert len(deleted) == count and set(deleted) == {str(p.id) for p in posts}
    async with suite.feed.state.database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


async def test_group_and_membership_events_feed_cannot_read_are_dead_lettered(suite):
    """An event that does not match its model changes no replica and is not retried: an
    unknown visibility would otherwise be stored, a membership without its persona would fail
    on every delivery."""
    (ada, ada_id), (bob, _) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "owner"}, visibility="open")
    await post(suite.client, ada, "open talk", audience="group", group_id=group)
    await send_events(
        suite,
        ("group.updated", group, group_data(group, visibility="everyone")),
        ("membership.added", group, {"group_id": group, "role": "member"}),
    )
    assert await bodies(suite.client, bob, f"/api/v1/timelines/groups/{group}") == ["open talk"]
    async with suite.feed.state.database.sessionmaker() as session:
        letters = (
            await session.execute(
                select(outbox_tables.dead_letter.c.type, outbox_tables.dead_letter.c.error).order_by(
                    outbox_tables.dead_letter.c.id
                )
            )
        ).all()
    assert [(t, error.split(":")[0]) for t, error in letters] == [
        ("group.updated", "data.visibility"),
        ("membership.added", "data.persona_id"),
    ]
