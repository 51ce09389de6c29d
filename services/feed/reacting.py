"""Reactions: a fixed set of kinds, at most one of each per persona and post. Adding one and
taking it back are idempotent, keep the post's counts and publish an event, and its record to
records (``records``) with it; both commit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Integer, Uuid, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.db import upsert
from kit.outbox import Outbox, Then
from kit.timeutil import utcnow
from services.feed import records
from services.feed.access import ensure_writable, visible_post
from services.feed.models import REACTION_KINDS, Post, Reaction
from services.feed.records import PostScope
from services.feed.schemas import PostPublic, ReactionKind, ReactionsPublic, post_public


def reaction_event(post: PostScope, persona_id: uuid.UUID, kind: str) -> dict[str, object]:
    """What other services learn of a reaction (``reaction.added`` adds its ``created_at``)."""
    return {
        "post_id": str(post.id),
        "persona_id": str(persona_id),
        "kind": kind,
        "context": post.context,
        "group_id": str(post.group_id) if post.group_id else None,
    }


async def react(
    session: AsyncSession, outbox: Outbox, caller: Principal, post_id: uuid.UUID, kind: ReactionKind
) -> tuple[PostPublic, bool]:
    """The post as the caller now sees it, and whether this call added the reaction (False when
    it was there already, or a concurrent request added it)."""
    assert caller.persona_id is not None
    row = await visible_post(session, caller, post_id)
    post: Post = row[0]
    await ensure_writable(session, post)
    now = utcnow()
    values = {"post_id": post_id, "persona_id": caller.persona_id, "kind": kind, "created_at": now}
    # One statement adds it or finds it there: the same request again, or a concurrent one,
    # whose commit it waits for (decision 0053).
    if not await upsert(session, Reaction, values, _KEY, update=False):
        if int(row[3] or 0) & _bit(kind):
            return post_public(row), False  # there when the post was read: the read counts it
        session.expire_all()  # added since: read again, with what it counted
        return post_public(await visible_post(session, caller, post_id)), False
    event = {**reaction_event(post, caller.persona_id, kind), "created_at": now.isoformat()}
    events = [
        ("reaction.added", str(post_id), event),
        records.reaction_record(post, caller.persona_id, kind, "added", now),
    ]
    counts = await _count(session, outbox, events, post_id, kind, 1)
    await session.commit()
    return _recounted(row, counts, kind, added=True), True


async def take_back(
    session: AsyncSession, outbox: Outbox, caller: Principal, post_id: uuid.UUID, kind: ReactionKind
) -> PostPublic:
    """Taking back a reaction that is not there changes nothing."""
    assert caller.persona_id is not None
    row = await visible_post(session, caller, post_id)
    post: Post = row[0]
    await ensure_writable(session, post)
    result = await session.execute(
        delete(Reaction).where(
            col(Reaction.post_id) == post_id,
            col(Reaction.persona_id) == caller.persona_id,
            col(Reaction.kind) == kind,
        )
    )
    if getattr(result, "rowcount", 0) != 1:
        # Not there, or taken back by a concurrent request since the read: read it again.
        session.expire_all()
        return post_public(await visible_post(session, caller, post_id))
    events = [
        ("reaction.removed", str(post_id), reaction_event(post, caller.persona_id, kind)),
        records.reaction_record(post, caller.persona_id, kind, "removed", utcnow()),
    ]
    counts = await _count(session, outbox, events, post_id, kind, -1)
    await session.commit()
    return _recounted(row, counts, kind, added=False)


def _counting(kind: str) -> str:
    counted = ", ".join(f"{name}_count" for name in REACTION_KINDS)
    return f"UPDATE post SET {kind}_count = {kind}_count + :change WHERE id = :post RETURNING {counted}"  # noqa: S608 (REACTION_KINDS' names)


# A statement for each kind, its text built once (as ``access``'s checks are).
_COUNTS = {kind: _counting(kind) for kind in REACTION_KINDS}
_COUNT_TYPES = {"post": Uuid(), "change": Integer()}
_KEY = ["post_id", "persona_id", "kind"]


async def _count(
    session: AsyncSession,
    outbox: Outbox,
    events: Sequence[tuple[str, str, Mapping[str, Any]]],
    post_id: uuid.UUID,
    kind: str,
    change: int,
) -> dict[str, int]:
    """Publishes the change's ``events`` and changes the post's count of ``kind``, in one
    statement on PostgreSQL (decision 0054): the post's row is locked from its last statement
    to the commit. Returns every reaction count as the update left it (the reactions other
    transactions committed first included), so that the answer needs no second read of the
    post."""
    counting = Then(_COUNTS[kind], {"post": post_id, "change": change}, _COUNT_TYPES)
    result = await outbox.publish_many(session, events, then=counting)
    assert result is not None
    return dict(zip(REACTION_KINDS, result.one(), strict=True))


def _bit(kind: str) -> int:
    """``kind``'s bit in a row's mask of the reader's own reactions."""
    return 1 << REACTION_KINDS.index(kind)


def _recounted(row: Any, counts: dict[str, int], kind: str, *, added: bool) -> PostPublic:
    """The post read before the change (``row``), with the counts the change left and the
    caller's own reactions with ``kind`` added or taken back."""
    bit = _bit(kind)
    mine = int(row[3] or 0)
    public = post_public((row[0], row[1], row[2], mine | bit if added else mine & ~bit))
    reactions = ReactionsPublic(counts=counts, mine=public.reactions.mine)
    return public.model_copy(update={"reactions": reactions})
