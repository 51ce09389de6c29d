"""Reactions: a fixed set of kinds, one of each per persona and post."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from kit.db import SessionDep
from kit.outbox import OutboxDep
from kit.timeutil import utcnow
from kit.tokens import CurrentPersona
from services.feed.access import ensure_writable, visible_post
from services.feed.models import Post, Reaction
from services.feed.schemas import PostPublic, ReactionKind
from services.feed.timelines import post_public

router = APIRouter(prefix="/api/v1/posts/{post_id}/reactions", tags=["reactions"])

Kind = Annotated[ReactionKind, Path(description="like, celebrate, support, insightful or curious")]


@router.put(
    "/{kind}",
    summary="React to a post",
    responses={200: {"description": "Already reacted"}, 201: {"description": "Reacted"}},
)
async def add_reaction(
    post_id: uuid.UUID,
    kind: Kind,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
    response: Response,
) -> PostPublic:
    """Idempotent; the answer is the post with its counts and the caller's own reactions."""
    assert caller.persona_id is not None
    post: Post = (await visible_post(session, caller, post_id))[0]
    await ensure_writable(session, post)
    response.status_code = 200
    if await session.get(Reaction, (post_id, caller.persona_id, kind)) is None:
        now = utcnow()
        column = getattr(Post, f"{kind}_count")
        try:
            session.add(Reaction(post_id=post_id, persona_id=caller.persona_id, kind=kind, created_at=now))
            await session.flush()
            await session.execute(update(Post).where(col(Post.id) == post_id).values({column: column + 1}))
            await outbox.publish(
                session,
                "reaction.added",
                str(post_id),
                {
                    "post_id": str(post_id),
                    "persona_id": str(caller.persona_id),
                    "kind": kind,
                    "context": post.context,
                    "group_id": str(post.group_id) if post.group_id else None,
                    "created_at": now.isoformat(),
                },
            )
            await session.commit()
            response.status_code = 201
        except IntegrityError:
            await session.rollback()  # the same reaction, added concurrently
    session.expire_all()
    return post_public(await visible_post(session, caller, post_id))


@router.delete("/{kind}", summary="Take back a reaction")
async def remove_reaction(
    post_id: uuid.UUID, kind: Kind, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep
) -> PostPublic:
    """Idempotent: taking back a reaction that is not there changes nothing."""
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
        await outbox.publish(
            session,
            "reaction.removed",
            str(post_id),
            {
                "post_id": str(post_id),
                "persona_id": str(caller.persona_id),
                "kind": kind,
                "context": post.context,
                "group_id": str(post.group_id) if post.group_id else None,
            },
        )
    await session.commit()
    session.expire_all()
    return post_public(await visible_post(session, caller, post_id))
