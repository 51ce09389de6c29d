"""The lookups moderation makes when a report is filed (decision 0032): a post or a comment as
one persona, the reporter, sees it. Behind the internal token, and left out of the published
API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from kit.internal import ServiceToken
from services.feed import moderation
from services.feed.deps import SessionDep
from services.feed.schemas import ModerationItem

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
