"""Notifications: mentions, comments on a persona's posts and replies to their comments reach
that persona, and only when the rule lets them see the post (``timelines.seen_by_each``); its
reader lists them and marks them read.

A reader's notifications leave out those about posts not shown to the reader
(``timelines.shown_ids``: a post deleted, moderated, or by an author no longer active) and
those of actors no longer active (``notifications_of``). Every read of notifications starts
from it, but one: the persona's own export (``for_export``, asked by records; decision 0033),
which holds every notification the persona has."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.principal import Principal
from kit.pagination import decode_id_cursor
from kit.timeutil import utcnow
from services.feed.listing import Listing, by_id
from services.feed.models import Notification, PersonaReplica, Post
from services.feed.schemas import NotificationsRead, RecordsNotifications, records_notification
from services.feed.timelines import ACTIVE_AUTHOR, seen_by_each, seen_by_each_params, shown_ids


async def who_can_see(session: AsyncSession, post: Post, personas: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """The subset of ``personas`` (all of the post's context) that may see ``post``, in one
    statement."""
    candidates = list(dict.fromkeys(personas))
    if not candidates:
        return set()
    params = seen_by_each_params(post.id, post.context, candidates)
    row = (await session.execute(seen_by_each(len(candidates)), params)).first()
    if row is None:
        return set()
    return {persona for persona, sees in zip(candidates, row, strict=True) if sees}


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


def notifications_of(persona_id: uuid.UUID) -> Any:
    """``persona_id``'s notifications with their actors' names (rows for
    ``schemas.notification_public``): those about posts shown to the persona, by actors still
    active."""
    return (
        select(Notification, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == col(Notification.actor_id), isouter=True)
        .where(
            col(Notification.persona_id) == persona_id,
            ACTIVE_AUTHOR,
            col(Notification.post_id).in_(shown_ids(persona_id)),
        )
    )


async def received(
    session: AsyncSession, reader: Principal, *, unread: bool, cursor: str | None, limit: int
) -> Listing[Any]:
    """The reader's notifications, newest first; with ``unread`` only those not yet read."""
    assert reader.persona_id is not None
    scope = f"notifications:{reader.persona_id}:{int(unread)}"
    before = decode_id_cursor(scope, cursor)
    query = notifications_of(reader.persona_id)
    if unread:
        query = query.where(col(Notification.read_at).is_(None))
    if before is not None:
        query = query.where(col(Notification.id) < before)
    rows = (await session.execute(query.order_by(col(Notification.id).desc()).limit(limit + 1))).all()
    return Listing(scope, rows, by_id)


async def mark_read(session: AsyncSession, persona_id: uuid.UUID, which: NotificationsRead) -> int:
    """Marks the given ids (those of other personas are ignored), or all, read; returns how
    many it marked. Commits."""
    statement = update(Notification).where(
        col(Notification.persona_id) == persona_id, col(Notification.read_at).is_(None)
    )
    if which.ids is not None:
        statement = statement.where(col(Notification.id).in_(which.ids))
    elif not which.all:
        return 0  # all: false and no ids
    result = await session.execute(statement.values(read_at=utcnow()))
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def for_export(
    session: AsyncSession, persona_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
) -> RecordsNotifications:
    """Every notification of ``persona_id`` (read or not, whatever became of its post), in id
    order from just after ``after``: what records exports to the persona as its own data."""
    query = select(Notification).where(col(Notification.persona_id) == persona_id)
    if after is not None:
        query = query.where(col(Notification.id) > after)
    rows = list((await session.scalars(query.order_by(col(Notification.id)).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return RecordsNotifications(
        items=[records_notification(note) for note in rows], next=rows[-1].id if more else None
    )
