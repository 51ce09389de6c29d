"""Reading posts: the timelines other than the home timeline (the organisation's, a persona's, a
group's, a tag's), and a post's edit history. Each lists posts the reader sees
(``timelines.visible_posts``), newest first, and needs no HTTP.

The home timeline, the busiest read, has its own module (``services.feed.home``); search ranks
rather than lists (``services.feed.search``); single posts are read with
``access.visible_post``.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import and_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.principal import Principal
from kit.errors import NotFound
from kit.pagination import decode_id_cursor
from services.feed.access import group_and_member, visible_post
from services.feed.content import tag_name
from services.feed.listing import Listing, by_id
from services.feed.models import GroupReplica, MembershipReplica, PersonaReplica, Post, PostRevision, PostTag
from services.feed.replicas import Groups
from services.feed.timelines import page_of_posts, unlimited_author, visible_posts


async def _posts(
    session: AsyncSession,
    reader: Principal,
    condition: Any,
    *,
    scope: str,
    cursor: str | None,
    limit: int,
    join: tuple[Any, Any] | None = None,
    lead: tuple[Any, Any] | None = None,
) -> Listing[Any]:
    """A page of the posts ``reader`` sees that match ``condition``; on a first page the
    ``lead`` (condition, order) posts come first, fetched in the same statement."""
    before = decode_id_cursor(scope, cursor)
    posts = visible_posts(reader)
    if join is not None:
        posts = posts.join(*join)
    rows, leading = await page_of_posts(
        session, reader, condition, before=before, limit=limit, source=posts, lead=lead
    )
    return Listing(scope, rows, by_id, leading)


async def organisation(
    session: AsyncSession, reader: Principal, *, cursor: str | None, limit: int
) -> Listing[Any]:
    """Everything posted to the reader's whole context, but by limited authors (decision
    0032: their posts reach their followers' home timelines, never this one)."""
    return await _posts(
        session,
        reader,
        and_(col(Post.context) == reader.context, col(Post.audience) == "organisation", unlimited_author()),
        scope=f"organisation:{reader.context}",
        cursor=cursor,
        limit=limit,
    )


async def by_persona(
    session: AsyncSession, reader: Principal, persona_id: uuid.UUID, *, cursor: str | None, limit: int
) -> Listing[Any]:
    """A persona's posts that the reader sees; a persona of the other context, or one no
    longer active, is a 404."""
    persona = await session.get(PersonaReplica, persona_id)
    if persona is None or persona.context != reader.context or persona.status != "active":
        raise NotFound("No persona with this id.")
    return await _posts(
        session,
        reader,
        col(Post.author_id) == persona_id,
        scope=f"persona:{persona_id}:{reader.persona_id}",
        cursor=cursor,
        limit=limit,
    )


async def in_group(
    session: AsyncSession,
    reader: Principal,
    group_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
    groups: Groups | None = None,
) -> Listing[Any]:
    """A group's posts, those its owners pinned leading the first page. Members read their
    group, anyone of the context an open group; any other group is a 404, as one that does
    not exist. Where feed's replicas have not caught up with groups yet (a group just created,
    a member just let in), ``groups`` is asked once (``replicas``)."""
    group, member = await _group_and_member(session, reader, group_id)
    if groups is not None and await groups.catch_up(
        session, reader, group_id, group, member, members_only=False
    ):
        group, member = await _group_and_member(session, reader, group_id)
    if group is None or group.context != reader.context or (group.visibility != "open" and member is None):
        raise NotFound("No group with this id.")
    return await _posts(
        session,
        reader,
        and_(
            col(Post.group_id) == group_id,
            col(Post.context) == reader.context,
            col(Post.group_pinned_at).is_(None),
        ),
        scope=f"group:{group_id}",
        cursor=cursor,
        limit=limit,
        lead=(
            and_(col(Post.group_id) == group_id, col(Post.group_pinned_at).is_not(None)),
            col(Post.group_pinned_at).desc(),
        ),
    )


async def _group_and_member(
    session: AsyncSession, reader: Principal, group_id: uuid.UUID
) -> tuple[GroupReplica | None, MembershipReplica | None]:
    assert reader.persona_id is not None
    return await group_and_member(session, reader.persona_id, group_id)


async def tagged(
    session: AsyncSession, reader: Principal, tag: str, *, cursor: str | None, limit: int
) -> Listing[Any]:
    """Posts with a tag, whatever its case or Unicode form."""
    name = tag_name(tag)
    return await _posts(
        session,
        reader,
        and_(col(PostTag.context) == reader.context, col(PostTag.tag) == name),
        scope=f"tag:{reader.persona_id}:{hashlib.sha256(name.encode()).hexdigest()[:16]}",
        cursor=cursor,
        limit=limit,
        join=(PostTag, col(PostTag.post_id) == col(Post.id)),
    )


async def history(
    session: AsyncSession, reader: Principal, post_id: uuid.UUID, *, cursor: str | None, limit: int
) -> Listing[PostRevision]:
    """The texts edits of a post replaced, newest edit first, for whoever sees the post."""
    await visible_post(session, reader, post_id)
    scope = f"history:{post_id}"
    before = decode_id_cursor(scope, cursor)
    query = select(PostRevision).where(col(PostRevision.post_id) == post_id)
    if before is not None:
        query = query.where(col(PostRevision.id) < before)
    rows = (await session.scalars(query.order_by(col(PostRevision.id).desc()).limit(limit + 1))).all()
    return Listing(scope, rows, lambda revision: [str(revision.id)])
