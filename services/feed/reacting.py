"""Reactions: a fixed set of kinds, at most one of each per persona and post. Adding one and
taking it back are idempotent, keep the post's counts and publish an event, and its record to
records (``records``) with it; both commit."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.feed import records
from services.feed.access import ensure_writable, visible_post
from services.feed.models import Post, Reaction
from services.feed.records import PostScope
from services.feed.schemas import PostPublic, ReactionKind, post_public


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
    post: Post = (await visible_post(session, caller, post_id))[0]
    await ensure_writable(session, post)
    added = False
    if await session.get(Reaction, (post_id, caller.persona_id, kind)) is None:
        now = utcnow()
        column = getattr(Post, f"{kind}_count")
        try:
            session.add(Reaction(post_id=post_id, persona_id=caller.persona_id, kind=kind, created_at=now))
            await session.flush()
            await session.execute(update(Post).where(col(Post.id) == post_id).values({column: column + 1}))
            event = {**reaction_event(post, caller.persona_id, kind), "created_at": now.isoformat()}
            await outbox.publish_many(
                session,
                [
                    ("reaction.added", str(post_id), event),
                    records.reaction_record(post, caller.persona_id, kind, "added", now),
                ],
            )
            await session.commit()
            added = True
        except IntegrityError:
            await session.rollback()  # the same reaction, added concurrently
    session.expire_all()
    return post_public(await visible_post(session, caller, post_id)), added


async def take_back(
    session: AsyncSession, outbox: Outbox, caller: Principal, post_id: uuid.UUID, kind: ReactionKind
) -> PostPublic:
    """Taking back a reaction that is not there changes nothing."""
    assert caller.persona_id is not None
    post: Post = (await visible_post(session, caller, post_id))[0]
    await ensure_writable(session, post)
    result = await session.execute(
        delete(Reaction).where(
            col(Reaction.post_id) == post_id,
            col(Reaction.persona_id) == caller.persona_id,
            col(Reaction.kind) == kind,
        )
    )
    if getattr(result, "rowcount", 0) == 1:
        column = getattr(Post, f"{kind}_count")
        await session.execute(update(Post).where(col(Post.id) == post_id).values({column: column - 1}))
        await outbox.publish_many(
            session,
            [
                ("reaction.removed", str(post_id), reaction_event(post, caller.persona_id, kind)),
                records.reaction_record(post, caller.persona_id, kind, "removed", utcnow()),
            ],
        )
    await session.commit()
    session.expire_all()
    return post_public(await visible_post(session, caller, post_id))
