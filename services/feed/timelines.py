"""Who sees which post, and the timeline queries built on that rule.

A post is visible to a persona of the same context when its author is not deactivated or
erased, it is not deleted, and: its audience is the organisation; or it is for the author's
followers and the reader is the author or follows them; or it is in a group the reader is a
member of, or in an open group.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, exists, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from kit.tokens import Principal
from services.feed.models import Follow, GroupReplica, MembershipReplica, PersonaReplica, Post

ACTIVE_AUTHOR = or_(col(PersonaReplica.status).is_(None), col(PersonaReplica.status) == "active")


def posts_with_authors() -> Select[Post, str, str]:
    return (
        select(Post, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == Post.author_id, isouter=True)
        .where(col(Post.deleted_at).is_(None), ACTIVE_AUTHOR)
    )


def _follows(reader: uuid.UUID) -> Any:
    return col(Post.author_id).in_(select(Follow.followee_id).where(col(Follow.follower_id) == reader))


def _my_groups(reader: uuid.UUID) -> Any:
    return col(Post.group_id).in_(
        select(MembershipReplica.group_id).where(col(MembershipReplica.persona_id) == reader)
    )


def visible_to(reader: Principal) -> Any:
    """The visibility rule as a SQL condition on ``Post``."""
    assert reader.persona_id is not None
    me = reader.persona_id
    open_group = exists().where(
        col(GroupReplica.id) == Post.group_id,
        col(GroupReplica.visibility) == "open",
        col(GroupReplica.context) == reader.context,
    )
    return and_(
        col(Post.context) == reader.context,
        or_(
            col(Post.audience) == "organisation",
            and_(col(Post.audience) == "followers", or_(col(Post.author_id) == me, _follows(me))),
            and_(col(Post.audience) == "group", or_(_my_groups(me), open_group)),
        ),
    )


def home_condition(reader: Principal) -> Any:
    """Own posts, posts by followed personas (organisation or followers), and posts in the
    reader's groups."""
    assert reader.persona_id is not None
    me = reader.persona_id
    return and_(
        col(Post.context) == reader.context,
        or_(
            and_(
                col(Post.audience).in_(("organisation", "followers")),
                or_(col(Post.author_id) == me, _follows(me)),
            ),
            and_(col(Post.audience) == "group", _my_groups(me)),
        ),
    )


async def page_of_posts(
    session: AsyncSession, condition: Any, *, before: uuid.UUID | None, limit: int
) -> list[Any]:
    """One statement: up to ``limit + 1`` posts newest first, strictly older than ``before``."""
    query = posts_with_authors().where(condition)
    if before is not None:
        query = query.where(col(Post.id) < before)
    result = await session.execute(query.order_by(col(Post.id).desc()).limit(limit + 1))
    return list(result.all())
