"""Who is told of a post and who reads its comments are decided by the one visibility rule of
``timelines``: for posts of every audience and personas in every relation to them, a
notification reaches exactly the personas that can read the post (``notifications.who_can_see``
against ``timelines.visible_posts``), and a persona reads a post's comments exactly when it
can read the post (``commenting.comments_of``)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import col

from domain.principal import Principal
from services.feed.commenting import comments_of
from services.feed.models import Post
from services.feed.notifications import who_can_see
from services.feed.timelines import visible_posts
from tests.feed.support import follow, make_group, people, post
from tests.helpers import auth


def _principal(persona: uuid.UUID, context: str = "professional") -> Principal:
    return Principal(
        subject=str(persona),
        persona_id=persona,
        context=context,
        scopes=frozenset(),
        roles=frozenset(),
        token_id="t",
        issued_at=0,
        expires_at=2**40,
    )


async def _posts_of_every_audience(suite: Any) -> tuple[list[str], list[uuid.UUID]]:
    """Ada's posts, each with a comment: to all, to followers, in an open, a closed and a secret
    group; and Ada, Bob (her follower, in her groups), Cyd (her follower) and Dan."""
    (ada, ada_id), (bob, bob_id), (cyd, cyd_id), (_, dan_id) = await people(suite, "ada", "bob", "cyd", "dan")
    await follow(suite.client, bob, ada_id)
    await follow(suite.client, cyd, ada_id)
    groups = {
        visibility: await make_group(suite, {ada_id: "owner", bob_id: "member"}, visibility=visibility)
        for visibility in ("open", "closed", "secret")
    }
    created = [
        await post(suite.client, ada, "to all"),
        await post(suite.client, ada, "to followers", audience="followers"),
        *[
            await post(suite.client, ada, f"in the {visibility} group", audience="group", group_id=group)
            for visibility, group in groups.items()
        ],
    ]
    for made in created:
        resp = await suite.client.post(
            f"/api/v1/posts/{made['id']}/comments", json={"body": "a comment"}, headers=auth(ada)
        )
        assert resp.status_code == 201, resp.text
    personas = [uuid.UUID(p) for p in (ada_id, bob_id, cyd_id, dan_id)]
    return [made["id"] for made in created], personas


async def test_notifications_and_comments_follow_the_rule_of_posts(suite):
    post_ids, personas = await _posts_of_every_audience(suite)
    ada, bob, cyd, dan = personas
    expected = [{ada, bob, cyd, dan}, {ada, bob, cyd}, {ada, bob, cyd, dan}, {ada, bob}, {ada, bob}]
    async with suite.feed.state.database.sessionmaker() as session:
        for post_id, should in zip(map(uuid.UUID, post_ids), expected, strict=True):
            readers = set()
            for persona in personas:
                query = visible_posts(_principal(persona)).where(col(Post.id) == post_id)
                sees = (await session.execute(query)).first() is not None
                comments = (await session.execute(comments_of(_principal(persona), post_id))).all()
                assert bool(comments) == sees, (post_id, persona)
                if sees:
                    readers.add(persona)
            assert readers == should, post_id
            found = await session.get(Post, post_id)
            assert found is not None
            assert await who_can_see(session, found, personas) == readers, post_id
        # A persona of the other context sees nothing of them.
        stranger = _principal(uuid.uuid4(), "personal")
        assert (await session.execute(visible_posts(stranger))).first() is None
        assert (await session.execute(comments_of(stranger, uuid.UUID(post_ids[0])))).first() is None
