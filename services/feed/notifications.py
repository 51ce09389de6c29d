"""Notifications: mentions, comments on a persona's posts and replies to their comments reach
that persona, and only when they may see the post."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.feed.models import Follow, GroupReplica, MembershipReplica, Notification, Post


async def who_can_see(session: AsyncSession, post: Post, personas: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """The subset of ``personas`` (all of the post's context) that may see ``post``."""
    candidates = set(personas)
    if not candidates or post.audience == "organisation":
        return candidates
    if post.audience == "followers":
        rows = await session.scalars(
            select(Follow.follower_id).where(
                col(Follow.followee_id) == post.author_id, col(Follow.follower_id).in_(candidates)
            )
        )
        return set(rows.all()) | ({post.author_id} & candidates)
    group = await session.get(GroupReplica, post.group_id)
    if group is None:
        return set()
    if group.visibility == "open":
        return candidates
    rows = await session.scalars(
        select(MembershipReplica.persona_id).where(
            col(MembershipReplica.group_id) == post.group_id,
            col(MembershipReplica.persona_id).in_(candidates),
        )
    )
    return set(rows.all())


async def notify(
    session: AsyncSession,
    post: Post,
    actor_id: uuid.UUID,
    targets: dict[uuid.UUID, str],
    *,
    comment_id: uuid.UUID | None = None,
) -> list[Notification]:
    """``targets`` maps persona to kind; the actor never notifies themself."""
    targets = {p: kind for p, kind in targets.items() if p != actor_id}
    allowed = await who_can_see(session, post, targets)
    made = [
        Notification(persona_id=p, kind=kind, actor_id=actor_id, post_id=post.id, comment_id=comment_id)
        for p, kind in targets.items()
        if p in allowed
    ]
    session.add_all(made)
    return made


def mention_ids(mentions: list[dict[str, Any]]) -> list[uuid.UUID]:
    return [uuid.UUID(m["id"]) for m in mentions]
