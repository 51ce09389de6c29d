"""The records copy and disposition end to end, through the owners: what people do at feed and
groups reaches records by the owners' own events, and a disposition run's events destroy the
rows at feed for good."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from services.feed.models import Comment, Post, Reaction
from services.records.models import GroupRecord, GroupVersion, Item, ItemVersion, MembershipEvent
from tests.helpers import auth, create_group, person, unique
from tests.records.support import dispose, officer, put_policies, rows, run_disposition

POSTS = "/api/v1/posts"
GROUPS = "/api/v1/groups"


async def _feed_count(suite: Any, model: Any, **where: Any) -> int:
    async with suite.feed.state.database.sessionmaker() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(col(getattr(model, name)) == value)
        return int(await session.scalar(query) or 0)


async def test_a_group_and_its_members_reach_the_copy_from_groups(suite):
    ada, _ = await person(suite.client, unique("ada"))
    bob, bob_id = await person(suite.client, unique("bob"))
    await suite.deliver()
    group = await create_group(suite.client, ada, unique("cloud"))
    renamed = await suite.client.patch(
        f"{GROUPS}/{group['id']}", json={"name": "Cloud platform"}, headers=auth(ada)
    )
    assert renamed.status_code == 200, renamed.text
    joined = await suite.client.put(f"{GROUPS}/{group['id']}/members/{bob_id}", headers=auth(bob))
    assert joined.status_code == 201, joined.text
    await suite.deliver()

    group_id = uuid.UUID(group["id"])
    (record,) = await rows(suite, GroupRecord, id=group_id)
    assert record.name == "Cloud platform" and record.handle == group["handle"] and record.deleted_at is None
    history = sorted(await rows(suite, GroupVersion, group_id=group_id), key=lambda v: v.at)
    assert [v.change for v in history] == ["created", "updated"]
    assert history[0].data["name"] == group["name"]
    members = await rows(suite, MembershipEvent, group_id=group_id)
    assert ("added", uuid.UUID(bob_id)) in {(m.change, m.persona_id) for m in members}


async def test_a_post_is_copied_at_every_change_and_disposition_destroys_it_at_feed(suite):
    token, _ = await officer(suite)
    ada, _ = await person(suite.client, unique("ada"))
    bob, _ = await person(suite.client, unique("bob"))
    await suite.deliver()
    created = await suite.client.post(POSTS, json={"body": "The first text"}, headers=auth(ada))
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]
    edited = await suite.client.patch(
        f"{POSTS}/{post_id}", json={"body": "The second text"}, headers=auth(ada)
    )
    assert edited.status_code == 200, edited.text
    commented = await suite.client.post(
        f"{POSTS}/{post_id}/comments", json={"body": "Noted."}, headers=auth(bob)
    )
    assert commented.status_code == 201, commented.text
    reacted = await suite.client.put(f"{POSTS}/{post_id}/reactions/like", headers=auth(bob))
    assert reacted.status_code in (200, 201), reacted.text
    await suite.deliver()

    versions = sorted(await rows(suite, ItemVersion, item_id=uuid.UUID(post_id)), key=lambda v: v.version)
    assert [(v.change, v.body) for v in versions] == [
        ("created", "The first text"),
        ("edited", "The second text"),
    ]
    kinds = sorted(i.kind for i in await rows(suite, Item))
    assert kinds == ["comment", "post", "reaction"]
    assert await _feed_count(suite, Post, id=uuid.UUID(post_id)) == 1

    assert (await put_policies(suite, token, dispose("organisation_posts", 0))).status_code == 200
    certificate = await run_disposition(suite, token)
    assert certificate["counts"] == {"organisation_posts": 1, "comments": 1, "reactions": 1}
    assert not await rows(suite, Item)
    await suite.deliver()
    assert await _feed_count(suite, Post, id=uuid.UUID(post_id)) == 0
    assert await _feed_count(suite, Comment, post_id=uuid.UUID(post_id)) == 0
    assert await _feed_count(suite, Reaction, post_id=uuid.UUID(post_id)) == 0
    missing = await suite.client.get(f"{POSTS}/{post_id}", headers=auth(ada))
    assert missing.status_code == 404
