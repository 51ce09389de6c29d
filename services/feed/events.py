"""What feed does with other services' events: keep its replicas of personas, groups and
memberships, which decide who sees what without calling another service on a read.

Handlers are idempotent (the receiver also skips event ids it has processed) and tolerate
events that arrive late: a replica row newer than the event is left alone.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.db import upsert
from kit.outbox import EventHandler, EventIn, handler_outbox
from kit.timeutil import as_utc, utcnow
from services.feed import inbox
from services.feed.deletion import DELETED_COLUMNS, publish_deleted
from services.feed.models import (
    REACTION_KINDS,
    Comment,
    Follow,
    GroupReplica,
    IdempotencyKey,
    MembershipReplica,
    Notification,
    PersonaReplica,
    Post,
    PostRevision,
    PostTag,
    Reaction,
)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


async def on_persona_changed(session: AsyncSession, event: EventIn) -> None:
    data = event.data
    persona_id = uuid.UUID(event.subject)
    # a persona's events are ordered by their own time: the profile's updated_at does not move
    # when the account's status does (docs/boundary.md)
    updated_at = as_utc(event.time)
    current = await session.get(PersonaReplica, persona_id)
    if current is not None and (as_utc(current.updated_at) > updated_at or current.status == "erased"):
        return  # an older event delivered late, or a persona already erased
    values = {
        "id": persona_id,
        "context": data.get("context", current.context if current else "professional"),
        "handle": str(data.get("handle", current.handle if current else ""))[:30],
        "display_name": str(data.get("display_name", current.display_name if current else ""))[:100],
        "status": "deactivated" if event.type == "persona.deactivated" else data.get("status", "active"),
        "discoverable": data.get("discoverable", current.discoverable if current else True) is not False,
        "updated_at": updated_at,
    }
    await upsert(session, PersonaReplica, values, ["id"])


async def on_persona_erased(session: AsyncSession, event: EventIn) -> None:
    """Erasure removes the persona's content, reactions, follows, memberships and
    notifications; the replica row stays as a tombstone so that a late event cannot revive
    it."""
    persona_id = uuid.UUID(event.subject)
    await inbox.drop(session, persona_id)  # first: the inbox lock before any row lock
    now = utcnow()
    own_posts = select(Post.id).where(col(Post.author_id) == persona_id)
    await session.execute(delete(PostTag).where(col(PostTag.post_id).in_(own_posts)))
    await session.execute(delete(PostRevision).where(col(PostRevision.post_id).in_(own_posts)))
    erased = await session.execute(
        update(Post)
        .where(col(Post.author_id) == persona_id, col(Post.deleted_at).is_(None))
        .values(deleted_at=now, body="", mentions=[], links=[], tags=[], pinned_until=None)
        .returning(*DELETED_COLUMNS)
    )
    await publish_deleted(session, handler_outbox(session), erased.all(), now)
    live_comments = (
        select(func.count())
        .select_from(Comment)
        .where(
            col(Comment.post_id) == col(Post.id),
            col(Comment.author_id) == persona_id,
            col(Comment.deleted_at).is_(None),
        )
        .scalar_subquery()
    )
    await session.execute(
        update(Post)
        .where(
            col(Post.id).in_(
                select(Comment.post_id).where(
                    col(Comment.author_id) == persona_id, col(Comment.deleted_at).is_(None)
                )
            )
        )
        .values(comment_count=col(Post.comment_count) - live_comments)
    )
    await session.execute(
        update(Comment)
        .where(col(Comment.author_id) == persona_id, col(Comment.deleted_at).is_(None))
        .values(deleted_at=now, body="", mentions=[])
    )
    for kind in REACTION_KINDS:
        column = getattr(Post, f"{kind}_count")
        reacted = select(Reaction.post_id).where(
            col(Reaction.persona_id) == persona_id, col(Reaction.kind) == kind
        )
        await session.execute(update(Post).where(col(Post.id).in_(reacted)).values({column: column - 1}))
    await session.execute(delete(Reaction).where(col(Reaction.persona_id) == persona_id))
    await session.execute(
        delete(Notification).where(
            or_(col(Notification.persona_id) == persona_id, col(Notification.actor_id) == persona_id)
        )
    )
    await session.execute(delete(IdempotencyKey).where(col(IdempotencyKey.persona_id) == persona_id))
    await session.execute(
        delete(Follow).where(
            or_(col(Follow.follower_id) == persona_id, col(Follow.followee_id) == persona_id)
        )
    )
    await session.execute(delete(MembershipReplica).where(col(MembershipReplica.persona_id) == persona_id))
    values = {
        "id": persona_id,
        "context": str(event.data.get("context", "personal")),
        "handle": "",
        "display_name": "",
        "status": "erased",
        "discoverable": False,
        "updated_at": now,
    }
    await upsert(session, PersonaReplica, values, ["id"])


async def on_group_changed(session: AsyncSession, event: EventIn) -> None:
    data = event.data
    group_id = uuid.UUID(event.subject)
    updated_at = _time(data.get("updated_at")) or event.time
    current = await session.get(GroupReplica, group_id)
    if current is not None and current.updated_at >= updated_at:
        return
    archived = bool(data.get("archived", current.archived if current else False))
    if event.type == "group.archived":
        archived = True
    elif event.type == "group.restored":
        archived = False
    values = {
        "id": group_id,
        "context": data.get("context", current.context if current else "professional"),
        "visibility": data.get("visibility", current.visibility if current else "closed"),
        "archived": archived,
        "updated_at": updated_at,
    }
    await upsert(session, GroupReplica, values, ["id"])


async def on_group_deleted(session: AsyncSession, event: EventIn) -> None:
    """A deleted group takes its posts with it. The group's row is locked first: a post being
    written to the group (which holds it shared, ``routes.posts``) commits before the posts are
    removed, or finds the group gone."""
    group_id = uuid.UUID(event.subject)
    await session.get(GroupReplica, group_id, with_for_update=True)
    group_posts = select(Post.id).where(col(Post.group_id) == group_id)
    await session.execute(delete(PostTag).where(col(PostTag.post_id).in_(group_posts)))
    await session.execute(delete(PostRevision).where(col(PostRevision.post_id).in_(group_posts)))
    await session.execute(delete(Notification).where(col(Notification.post_id).in_(group_posts)))
    now = utcnow()
    removed = await session.execute(
        update(Post)
        .where(col(Post.group_id) == group_id, col(Post.deleted_at).is_(None))
        .values(deleted_at=now, body="", mentions=[], links=[], tags=[], group_pinned_at=None)
        .returning(*DELETED_COLUMNS)
    )
    await publish_deleted(session, handler_outbox(session), removed.all(), now)
    await session.execute(delete(MembershipReplica).where(col(MembershipReplica.group_id) == group_id))
    await session.execute(delete(GroupReplica).where(col(GroupReplica.id) == group_id))


async def on_membership_changed(session: AsyncSession, event: EventIn) -> None:
    data = event.data
    persona_id = uuid.UUID(str(data["persona_id"]))
    group_id = uuid.UUID(str(data.get("group_id", event.subject)))
    updated_at = _time(data.get("updated_at"))
    current = await session.get(MembershipReplica, (persona_id, group_id))
    if current is not None and current.updated_at and updated_at and current.updated_at > updated_at:
        return
    if current is None:
        await inbox.drop(session, persona_id)  # a new group among the persona's sources
    role = data.get("role")
    values = {
        "persona_id": persona_id,
        "group_id": group_id,
        "role": role if role in ("owner", "moderator", "member") else "member",
        "joined_at": _time(data.get("joined_at")),
        "updated_at": updated_at,
    }
    await upsert(session, MembershipReplica, values, ["persona_id", "group_id"])


async def on_membership_removed(session: AsyncSession, event: EventIn) -> None:
    data = event.data
    persona_id = uuid.UUID(str(data["persona_id"]))
    group_id = uuid.UUID(str(data.get("group_id", event.subject)))
    updated_at = _time(data.get("updated_at"))
    current = await session.get(MembershipReplica, (persona_id, group_id))
    if current is None:
        return
    if current.updated_at and updated_at and current.updated_at > updated_at:
        return  # the persona joined again after this removal
    await inbox.drop(session, persona_id)
    await session.delete(current)


handlers: dict[str, EventHandler] = {
    "persona.created": on_persona_changed,
    "persona.updated": on_persona_changed,
    "persona.deactivated": on_persona_changed,
    "persona.erased": on_persona_erased,
    "group.created": on_group_changed,
    "group.updated": on_group_changed,
    "group.archived": on_group_changed,
    "group.restored": on_group_changed,
    "group.deleted": on_group_deleted,
    "membership.added": on_membership_changed,
    "membership.updated": on_membership_changed,
    "membership.removed": on_membership_removed,
}
