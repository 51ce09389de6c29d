"""What feed does with other services' events: keep its replicas of personas, groups and
memberships, which decide who sees what without calling another service on a read.

Each consumed event is parsed into the model below that its handler declares; an event that
does not match is dead-lettered by the receiver (``kit.outbox``) and never reaches a handler.
Handlers are idempotent (the receiver also skips event ids it has processed) and tolerate
events that arrive late: a replica row newer than the event is left alone.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.contexts import Context
from kit.db import upsert
from kit.outbox import Consumer, EventHandler, IdEvent, handler_outbox
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


class _Data(BaseModel):
    """An event's data: fields it does not name are ignored; a field left out (or null) keeps
    what the replica holds."""

    model_config = ConfigDict(extra="ignore")


class PersonaChanged(_Data):
    """``persona.created``, ``persona.updated``, ``persona.deactivated`` (identity)."""

    context: Context | None = None
    handle: str | None = None
    display_name: str | None = None
    status: str = "active"
    discoverable: bool | None = None


class PersonaErased(_Data):
    """``persona.erased`` (identity)."""

    context: Context = "personal"


class GroupChanged(_Data):
    """``group.created``, ``group.updated``, ``group.archived``, ``group.restored`` (groups)."""

    context: Context | None = None
    visibility: Literal["open", "closed", "secret"] | None = None
    archived: bool | None = None
    updated_at: datetime | None = None


class GroupDeleted(_Data):
    """``group.deleted`` (groups): the subject names the group, the data adds nothing needed."""


class MembershipChanged(_Data):
    """``membership.added``, ``membership.updated``, ``membership.removed`` (groups)."""

    persona_id: uuid.UUID
    group_id: uuid.UUID | None = None
    role: str | None = None
    joined_at: datetime | None = None
    updated_at: datetime | None = None


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


async def on_persona_changed(session: AsyncSession, event: IdEvent[PersonaChanged]) -> None:
    data = event.data
    persona_id = event.subject
    # a persona's events are ordered by their own time: the profile's updated_at does not move
    # when the account's status does (docs/boundary.md)
    updated_at = as_utc(event.time)
    current = await session.get(PersonaReplica, persona_id)
    if current is not None and (as_utc(current.updated_at) > updated_at or current.status == "erased"):
        return  # an older event delivered late, or a persona already erased
    handle = data.handle if data.handle is not None else (current.handle if current else "")
    name = data.display_name if data.display_name is not None else (current.display_name if current else "")
    discoverable = (
        data.discoverable if data.discoverable is not None else (current.discoverable if current else True)
    )
    values = {
        "id": persona_id,
        "context": data.context or (current.context if current else "professional"),
        "handle": handle[:30],
        "display_name": name[:100],
        "status": "deactivated" if event.type == "persona.deactivated" else data.status,
        "discoverable": discoverable,
        "updated_at": updated_at,
    }
    await upsert(session, PersonaReplica, values, ["id"])


async def on_persona_erased(session: AsyncSession, event: IdEvent[PersonaErased]) -> None:
    """Erasure removes the persona's content, reactions, follows, memberships and
    notifications; the replica row stays as a tombstone so that a late event cannot revive
    it."""
    persona_id = event.subject
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
        "context": event.data.context,
        "handle": "",
        "display_name": "",
        "status": "erased",
        "discoverable": False,
        "updated_at": now,
    }
    await upsert(session, PersonaReplica, values, ["id"])


async def on_group_changed(session: AsyncSession, event: IdEvent[GroupChanged]) -> None:
    data = event.data
    group_id = event.subject
    updated_at = _utc(data.updated_at) or event.time
    current = await session.get(GroupReplica, group_id)
    if current is not None and current.updated_at >= updated_at:
        return
    archived = data.archived if data.archived is not None else (current.archived if current else False)
    if event.type == "group.archived":
        archived = True
    elif event.type == "group.restored":
        archived = False
    values = {
        "id": group_id,
        "context": data.context or (current.context if current else "professional"),
        "visibility": data.visibility or (current.visibility if current else "closed"),
        "archived": archived,
        "updated_at": updated_at,
    }
    await upsert(session, GroupReplica, values, ["id"])


async def on_group_deleted(session: AsyncSession, event: IdEvent[GroupDeleted]) -> None:
    """A deleted group takes its posts with it. The group's row is locked first: a post being
    written to the group (which holds it shared, ``routes.posts``) commits before the posts are
    removed, or finds the group gone."""
    group_id = event.subject
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


async def on_membership_changed(session: AsyncSession, event: IdEvent[MembershipChanged]) -> None:
    data = event.data
    persona_id = data.persona_id
    group_id = data.group_id or event.subject
    updated_at = _utc(data.updated_at)
    current = await session.get(MembershipReplica, (persona_id, group_id))
    if current is not None and current.updated_at and updated_at and current.updated_at > updated_at:
        return
    if current is None:
        await inbox.drop(session, persona_id)  # a new group among the persona's sources
    role = data.role
    values = {
        "persona_id": persona_id,
        "group_id": group_id,
        "role": role if role in ("owner", "moderator", "member") else "member",
        "joined_at": _utc(data.joined_at),
        "updated_at": updated_at,
    }
    await upsert(session, MembershipReplica, values, ["persona_id", "group_id"])


async def on_membership_removed(session: AsyncSession, event: IdEvent[MembershipChanged]) -> None:
    data = event.data
    persona_id = data.persona_id
    group_id = data.group_id or event.subject
    updated_at = _utc(data.updated_at)
    current = await session.get(MembershipReplica, (persona_id, group_id))
    if current is None:
        return
    if current.updated_at and updated_at and current.updated_at > updated_at:
        return  # the persona joined again after this removal
    await inbox.drop(session, persona_id)
    await session.delete(current)


persona_changed = Consumer(IdEvent[PersonaChanged], on_persona_changed)
group_changed = Consumer(IdEvent[GroupChanged], on_group_changed)
membership_changed = Consumer(IdEvent[MembershipChanged], on_membership_changed)

handlers: dict[str, EventHandler] = {
    "persona.created": persona_changed,
    "persona.updated": persona_changed,
    "persona.deactivated": persona_changed,
    "persona.erased": Consumer(IdEvent[PersonaErased], on_persona_erased),
    "group.created": group_changed,
    "group.updated": group_changed,
    "group.archived": group_changed,
    "group.restored": group_changed,
    "group.deleted": Consumer(IdEvent[GroupDeleted], on_group_deleted),
    "membership.added": membership_changed,
    "membership.updated": membership_changed,
    "membership.removed": Consumer(IdEvent[MembershipChanged], on_membership_removed),
}
