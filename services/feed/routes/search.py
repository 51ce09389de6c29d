"""Search in posts and comments: what the caller sees, best first among the newest matches."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kit.pagination import Cursor, Limit, Page
from services.feed import search
from services.feed.deps import CurrentPersona, DatabaseDep, SessionDep
from services.feed.listing import json_page
from services.feed.schemas import SEARCH_PROBLEMS, CommentSearchItem, PostSearchItem, SearchText

router = APIRouter(prefix="/api/v1/search", tags=["search"])

RANKING = (
    "Best first among the newest 200 matches (relevance, halved for every 30 days of age), then "
    "the older matches, newest first. The caller's context only, and only what the caller may "
    "read: nothing of a group they cannot read, nothing hidden or removed by moderation, nothing "
    "of an author deactivated or erased."
)


@router.get(
    "/posts",
    summary="Search the posts the caller can see",
    description=f"{RANKING} Each post is shown as in a timeline, with an excerpt (`highlight`).",
    response_model=Page[PostSearchItem],
    responses=SEARCH_PROBLEMS,
)
async def search_posts(
    request: Request,
    session: SessionDep,
    database: DatabaseDep,
    caller: CurrentPersona,
    q: SearchText,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    found = await search.posts(session, database, caller, q, cursor=cursor, limit=limit)
    return json_page(request, found.items, found.after, limit)


@router.get(
    "/comments",
    summary="Search the comments the caller can see",
    description=f"{RANKING} A comment is found where the caller sees it: on a post they can see. "
    "`tag:` finds comments on posts with the tag. Each comment is shown as its post's comments "
    "show it, with an excerpt (`highlight`).",
    response_model=Page[CommentSearchItem],
    responses=SEARCH_PROBLEMS,
)
async def search_comments(
    request: Request,
    session: SessionDep,
    database: DatabaseDep,
    caller: CurrentPersona,
    q: SearchText,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    found = await search.comments(session, database, caller, q, cursor=cursor, limit=limit)
    return json_page(request, found.items, found.after, limit)
