"""Who sees which post, and the timeline queries built on that rule.

A post is visible to a persona of the same context when it is not deleted, its author is not
deactivated or erased, and: its audience is the organisation; or it is for the author's
followers and the reader is the author or follows them; or it is in a group the reader is a
member of, or in an open group of the reader's context (decision 0004). Posts of closed and
secret groups are for members only.

Every list is newest first with a one-column keyset (post ids are UUIDv7, so id order is
creation order); a page costs one statement, plus one for the pinned posts on a first page
(decision 0006).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, false, func, literal, or_, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from kit.timeutil import utcnow
from kit.tokens import Principal
from services.feed.models import (
    REACTION_KINDS,
    Follow,
    GroupReplica,
    MembershipReplica,
    PersonaReplica,
    Post,
    Reaction,
)
from services.feed.schemas import (
    AuthorPublic,
    LinkPublic,
    MentionPublic,
    PostPublic,
    ReactionsPublic,
)

MAX_PINNED = 10
MAX_INLINE_SOURCES = 1000
ACTIVE_AUTHOR = or_(col(PersonaReplica.status).is_(None), col(PersonaReplica.status) == "active")


def me(reader: Principal) -> uuid.UUID:
    assert reader.persona_id is not None
    return reader.persona_id


def my_reactions(reader: Principal) -> Any:
    """The caller's reactions to the outer query's post as a bit set, so that a page of posts
    with the caller's own reactions stays one statement."""
    bits = case(*[(col(Reaction.kind) == kind, 1 << i) for i, kind in enumerate(REACTION_KINDS)], else_=0)
    return (
        select(func.coalesce(func.sum(bits), 0))
        .where(col(Reaction.post_id) == col(Post.id), col(Reaction.persona_id) == me(reader))
        .scalar_subquery()
    )


def posts_for(reader: Principal) -> Any:
    """Live posts of active authors, each with its author's names and the reader's reactions."""
    return (
        select(Post, PersonaReplica.handle, PersonaReplica.display_name, my_reactions(reader).label("mine"))
        .join(PersonaReplica, col(PersonaReplica.id) == col(Post.author_id), isouter=True)
        .where(col(Post.deleted_at).is_(None), ACTIVE_AUTHOR)
    )


def _follows(reader: uuid.UUID) -> Any:
    return col(Post.author_id).in_(select(Follow.followee_id).where(col(Follow.follower_id) == reader))


def _my_groups(reader: uuid.UUID) -> Any:
    return col(Post.group_id).in_(
        select(MembershipReplica.group_id).where(col(MembershipReplica.persona_id) == reader)
    )


def _open_groups(context: str) -> Any:
    return col(Post.group_id).in_(
        select(GroupReplica.id).where(
            col(GroupReplica.visibility) == "open", col(GroupReplica.context) == context
        )
    )


def visible_to(reader: Principal) -> Any:
    """The visibility rule as a SQL condition on ``Post``."""
    persona = me(reader)
    assert reader.context is not None
    return and_(
        col(Post.context) == reader.context,
        or_(
            col(Post.audience) == "organisation",
            and_(
                col(Post.audience) == "followers",
                or_(col(Post.author_id) == persona, _follows(persona)),
            ),
            and_(col(Post.audience) == "group", or_(_my_groups(persona), _open_groups(reader.context))),
        ),
    )


def not_pinned(now: datetime) -> Any:
    return or_(col(Post.pinned_until).is_(None), col(Post.pinned_until) <= now)


@dataclass(frozen=True, slots=True)
class Sources:
    """Whom and which groups a reader's home timeline draws from."""

    followees: list[uuid.UUID]
    groups: list[uuid.UUID]


def home_condition(reader: Principal, now: datetime, sources: Sources | None = None) -> Any:
    """Own posts, posts by followed personas (organisation or followers), and posts in the
    reader's groups. Announcements still pinned lead the first page instead.

    With ``sources`` the followees and groups are literal lists, which lets PostgreSQL's planner
    see how few there are: for a persona following three people it then reads their posts
    through the author index instead of walking the whole post index backwards (decision
    0006). Without, they are subqueries."""
    persona = me(reader)
    if sources is None:
        authors = or_(col(Post.author_id) == persona, _follows(persona))
        groups = _my_groups(persona)
    else:
        authors = col(Post.author_id).in_([persona, *sources.followees])
        groups = col(Post.group_id).in_(sources.groups) if sources.groups else false()
    return and_(
        col(Post.context) == reader.context,
        or_(
            and_(col(Post.audience).in_(("organisation", "followers")), authors),
            and_(col(Post.audience) == "group", groups),
        ),
        not_pinned(now),
    )


def announcements_condition(reader: Principal, now: datetime) -> Any:
    return and_(
        col(Post.context) == reader.context,
        col(Post.audience) == "organisation",
        col(Post.pinned_until) > now,
    )


async def page_of_posts(
    session: AsyncSession,
    reader: Principal,
    condition: Any,
    *,
    before: uuid.UUID | None,
    limit: int,
    source: Any = None,
    lead: tuple[Any, Any] | None = None,
) -> tuple[list[Any], list[Any]]:
    """One statement: up to ``limit + 1`` posts newest first, strictly older than ``before``;
    and on a first page, the posts matching ``lead`` = (condition, order), which come first
    (pinned posts), fetched in the same statement with UNION ALL. ``source`` replaces the
    plain post query (the tag timeline joins its tag table)."""
    query = (source if source is not None else posts_for(reader)).where(condition)
    if before is not None:
        query = query.where(col(Post.id) < before)
    query = query.order_by(col(Post.id).desc()).limit(limit + 1)
    if lead is None or before is not None:
        return list((await session.execute(query)).all()), []
    pinned = posts_for(reader).where(lead[0]).order_by(lead[1]).limit(MAX_PINNED)
    both = union_all(
        select(query.add_columns(literal(0).label("lead")).subquery()),
        select(pinned.add_columns(literal(1).label("lead")).subquery()),
    ).subquery()
    post = aliased(Post, both)
    rows = (
        await session.execute(
            select(post, both.c.handle, both.c.display_name, both.c.mine).add_columns(both.c.lead)
        )
    ).all()
    regular = sorted((r[:4] for r in rows if not r[4]), key=lambda r: r[0].id, reverse=True)
    leading = sorted((r[:4] for r in rows if r[4]), key=_pin_key, reverse=True)
    return regular, leading


def _pin_key(row: Any) -> tuple[datetime, uuid.UUID]:
    post: Post = row[0]
    return (post.group_pinned_at or post.pinned_until or post.created_at, post.id)


def post_public(row: Any, now: datetime | None = None) -> PostPublic:
    """A row of ``posts_for`` as the public shape."""
    post, handle, display_name, mine = row
    now = now or utcnow()
    mine = int(mine or 0)
    return PostPublic(
        id=post.id,
        author=AuthorPublic(id=post.author_id, handle=handle, display_name=display_name),
        context=post.context,
        audience=post.audience,
        group_id=post.group_id,
        body=post.body,
        mentions=[MentionPublic(id=m["id"], handle=m["handle"]) for m in post.mentions or []],
        tags=list(post.tags or []),
        links=[LinkPublic(url=link["url"], title=link.get("title")) for link in post.links or []],
        pinned=bool(post.pinned_until and post.pinned_until > now) or post.group_pinned_at is not None,
        pinned_until=post.pinned_until,
        reactions=ReactionsPublic(
            counts={kind: getattr(post, f"{kind}_count") for kind in REACTION_KINDS},
            mine=[kind for i, kind in enumerate(REACTION_KINDS) if mine & (1 << i)],
        ),
        comment_count=post.comment_count,
        created_at=post.created_at,
        updated_at=post.updated_at,
        edited_at=post.edited_at,
    )
