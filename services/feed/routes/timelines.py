"""Timelines, newest first, with opaque cursors."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kit.db import SessionDep
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from kit.tokens import CurrentPersona
from services.feed.routes.posts import from_row
from services.feed.schemas import PostPublic
from services.feed.timelines import home_condition, page_of_posts

router = APIRouter(prefix="/api/v1/timelines", tags=["timelines"])


@router.get("/home", summary="The caller's home timeline")
async def get_home_timeline(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[PostPublic]:
    """Own posts, posts of followed personas and posts in the caller's groups, in the
    token's context only."""
    scope = f"home:{caller.persona_id}"
    before = decode_id_cursor(scope, cursor)
    rows = await page_of_posts(session, home_condition(caller), before=before, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r[0].id)])
    return Page[PostPublic](items=[from_row(r) for r in page.items], next_cursor=page.next_cursor)
