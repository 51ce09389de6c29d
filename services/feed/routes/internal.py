"""Other services' synchronous calls to feed, behind the internal token and left out of the
published API: the lookups moderation makes when a report is filed (decision 0032: a post or a
comment as one persona, the reporter, sees it), a persona's notifications, which records
exports to the persona (decision 0033), and media's question before it serves a file (decision
0036): whether a persona sees the post or comment the file is attached to."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from kit.internal import ServiceToken
from services.feed import attachments, moderation, notifications
from services.feed.deps import SessionDep
from services.feed.schemas import ModerationItem, RecordsNotifications

router = APIRouter(prefix="/internal/moderation", include_in_schema=False, dependencies=[ServiceToken])

Reader = Annotated[uuid.UUID, Query(description="The persona the item must be visible to.")]


@router.get("/posts/{post_id}", summary="A post as a reader sees it")
async def get_post(post_id: uuid.UUID, reader: Reader, session: SessionDep) -> ModerationItem:
    """404, as for a post that does not exist, when the reader may not see it."""
    return await moderation.lookup_post(session, reader, post_id)


@router.get("/comments/{comment_id}", summary="A comment as a reader sees it")
async def get_comment(comment_id: uuid.UUID, reader: Reader, session: SessionDep) -> ModerationItem:
    """404, as for a comment that does not exist, when the reader may not see it."""
    return await moderation.lookup_comment(session, reader, comment_id)


records_router = APIRouter(prefix="/internal/records", include_in_schema=False, dependencies=[ServiceToken])


@records_router.get("/notifications", summary="A persona's notifications, for its own export")
async def list_notifications(
    session: SessionDep,
    persona_id: Annotated[uuid.UUID, Query(description="The persona whose notifications these are.")],
    after: Annotated[uuid.UUID | None, Query(description="The `next` of the page before.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> RecordsNotifications:
    """Every notification of the persona, read or not, in id order; empty for a persona feed
    does not know."""
    return await notifications.for_export(session, persona_id, after=after, limit=limit)


media_router = APIRouter(prefix="/internal/media", include_in_schema=False, dependencies=[ServiceToken])


@media_router.get("/posts/{post_id}", status_code=204, summary="Whether a reader sees a post")
async def post_seen(post_id: uuid.UUID, reader: Reader, session: SessionDep) -> None:
    """204 when the reader sees the post, as `GET /api/v1/posts/{id}` would show it to them;
    404 otherwise, as for a post that does not exist."""
    await attachments.post_seen(session, reader, post_id)


@media_router.get("/comments/{comment_id}", status_code=204, summary="Whether a reader sees a comment")
async def comment_seen(comment_id: uuid.UUID, reader: Reader, session: SessionDep) -> None:
    """204 when the reader sees the comment (and its post); 404 otherwise, as for a comment
    that does not exist."""
    await attachments.comment_seen(session, reader, comment_id)
