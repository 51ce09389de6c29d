"""Reactions: a fixed set of kinds, one of each per persona and post."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response

from services.feed import reacting
from services.feed.deps import CurrentPersona, OutboxDep, SessionDep
from services.feed.schemas import PostPublic, ReactionKind

router = APIRouter(prefix="/api/v1/posts/{post_id}/reactions", tags=["reactions"])

Kind = Annotated[ReactionKind, Path(description="like, celebrate, support, insightful or curious")]


@router.put(
    "/{kind}",
    summary="React to a post",
    responses={
        200: {"description": "Already reacted"},
        201: {"description": "Reacted", "model": PostPublic},
    },
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
    post, added = await reacting.react(session, outbox, caller, post_id, kind)
    response.status_code = 201 if added else 200
    return post


@router.delete("/{kind}", summary="Take back a reaction")
async def remove_reaction(
    post_id: uuid.UUID, kind: Kind, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep
) -> PostPublic:
    """Idempotent: taking back a reaction that is not there changes nothing."""
    return await reacting.take_back(session, outbox, caller, post_id, kind)
