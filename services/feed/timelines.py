"""Who sees which post, and the timeline queries built on that rule.

A post is visible to a persona of the same context when its author is not deactivated or
erased, it is not deleted, and: its audience is the organisation; or it is for the author's
followers and the reader is the author or follows them; or it is in a group the reader is a
member of, or in an open group.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.tokens import Principal
from services.feed.models import Follow, GroupReplica, MembershipReplica, PersonaReplica, Post

ACTIVE_AUTHOR = or_(PersonaReplica.status.is_(None), PersonaReplica.status == "active")  # type: ignore[attr-defined]


def posts_with_authors() -> Select[Any]:
    return (
        select(Post, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, PersonaReplica.id == Post.author_id, isouter=True)
        .where(Post.deleted_at.is_(None), ACTIVE_AUTHOR)  # type: ignore[union-attr]
    )


def _follows(reader: uuid.UUID) -> Any:
    return Post.author_id.in_(select(Follow.followee_id).where(Follow.follower_id == reader))  # type: ignore[attr-defined]


def _my_groups(reader: uuid.UUID) -> Any:
    return Post.group_id.in_(select(MembershipReplica.group_id).where(MembershipReplica.persona_id == reader))  # type: ignore[union-attr]


def visible_to(reader: Principal) -> Any:
    """The visibility rule as a SQL condition on ``Post``."""
    assert reader.persona_id is not None
    me = reader.persona_id
    open_group = exists().where(
        GroupReplica.id == Post.group_id,
        GroupReplica.visibility == "open",
        GroupReplica.context == reader.context,
    )
    return and_(
        Post.context == reader.context,
        or_(
            Post.audience == "organisation",
            and_(Post.audience == "followers", or_(Post.author_id == me, _follows(me))),
            and_(Post.audience == "group", or_(_my_groups(me), open_group)),
        ),
    )


def home_condition(reader: Principal) -> Any:
    """Own posts, posts by followed personas (organisation or followers), and posts in the
    reader's groups."""
    assert reader.persona_id is not None
    me = reader.persona_id
    return and_(
        Post.context == reader.context,
        or_(
            and_(Post.audience.in_(("organisation", "followers")), or_(Post.author_id == me, _follows(me))),  # type: ignore[attr-defined]
            and_(Post.audience == "group", _my_groups(me)),
        ),
    )


async def page_of_posts(
    session: AsyncSession, condition: Any, *, before: uuid.UUID | None, limit: int
) -> list[Any]:
    """One statement: up to ``limit + 1`` posts newest first, strictly older than ``before``."""
    query = posts_with_authors().where(condition)
    if before is not None:
        query = query.where(Post.id < before)
    result = await session.execute(query.order_by(Post.id.desc()).limit(limit + 1))  # type: ignore[attr-defined]
    return list(result.all())
