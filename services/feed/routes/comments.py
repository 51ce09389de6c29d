"""Comments on posts, with one level of replies, oldest first."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from kit.idempotency import IdempotencyKeyHeader
from kit.pagination import Cursor, Limit, Page
from services.feed import commenting, idempotency
from services.feed.deps import AttachingDep, CurrentPersona, OutboxDep, SessionDep
from services.feed.listing import page_of
from services.feed.schemas import CommentCreate, CommentPublic, CommentUpdate, comment_public

router = APIRouter(prefix="/api/v1/posts/{post_id}/comments", tags=["comments"])


@router.get("", summary="Comments on a post, oldest first")
async def list_comments(
    post_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    parent_id: Annotated[
        uuid.UUID | None, Query(description="List the replies to this comment instead of the top level.")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[CommentPublic]:
    """Top-level comments by default, each with its `reply_count`; `parent_id` lists one
    comment's replies."""
    found = await commenting.comments(session, caller, post_id, parent_id, cursor=cursor, limit=limit)
    return page_of(request, response, found, limit=limit, item=lambda row: comment_public(*row))


@router.post(
    "",
    status_code=201,
    summary="Comment on a post, or reply to a comment",
    response_model=CommentPublic,
    responses={
        403: {"description": "The post's group is archived"},
        422: {"description": "Invalid, or a media id that cannot be attached (`media-not-attachable`)"},
        503: {"description": "The media service did not answer (with `media_ids`); nothing was written"},
    },
)
async def create_comment(
    post_id: uuid.UUID,
    body: CommentCreate,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
    attaching: AttachingDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> CommentPublic | Response:
    """The post's author hears of a comment, a comment's author of a reply, and mentioned
    personas of their mention (each only if they can see the post). `media_ids` attaches one of
    the caller's own uploads, ready and attached to nothing else; a comment with a file may
    have no text."""
    assert caller.persona_id is not None
    async with attaching:
        return await idempotency.keys.create(
            session,
            response,
            owner=caller.persona_id,
            key=idempotency_key,
            scope=f"create_comment:{post_id}",
            request=body,
            make=lambda: commenting.comment(session, outbox, caller, post_id, body, attaching),
        )


@router.get("/{comment_id}", summary="One comment")
async def get_comment(
    post_id: uuid.UUID, comment_id: uuid.UUID, session: SessionDep, caller: CurrentPersona
) -> CommentPublic:
    return comment_public(*(await commenting.find(session, caller, post_id, comment_id)))


@router.patch("/{comment_id}", summary="Edit a comment", responses={403: {"description": "Not the author"}})
async def update_comment(
    post_id: uuid.UUID,
    comment_id: uuid.UUID,
    body: CommentUpdate,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
) -> CommentPublic:
    return await commenting.edit(session, outbox, caller, post_id, comment_id, body)


@router.delete(
    "/{comment_id}",
    status_code=204,
    summary="Delete a comment",
    responses={403: {"description": "Not the author, a moderator of the post's group, or staff"}},
)
async def delete_comment(
    post_id: uuid.UUID,
    comment_id: uuid.UUID,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
) -> None:
    """Deleting a top-level comment removes its replies from view with it."""
    await commenting.remove(session, outbox, caller, post_id, comment_id)
