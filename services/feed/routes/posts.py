"""Posts: publish, read, search, edit with history, delete, pin."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from kit.idempotency import IdempotencyKeyHeader
from kit.pagination import Cursor, Limit, Page
from services.feed import idempotency, posting, reading, search
from services.feed.access import visible_post
from services.feed.deps import AttachingDep, CurrentPersona, DatabaseDep, GroupsDep, OutboxDep, SessionDep
from services.feed.listing import json_page, page_of
from services.feed.schemas import (
    SEARCH_PROBLEMS,
    PostCreate,
    PostPublic,
    PostSearchItem,
    PostUpdate,
    RevisionPublic,
    SearchText,
    post_public,
    revision_public,
)

router = APIRouter(prefix="/api/v1/posts", tags=["posts"])


@router.post(
    "",
    status_code=201,
    summary="Publish a post",
    response_model=PostPublic,
    responses={
        404: {"description": "The group does not exist in the caller's context"},
        403: {"description": "Not a member of the group, the group is archived, or not allowed to announce"},
        409: {"description": "A request with the same Idempotency-Key is still running"},
        422: {"description": "Invalid, or a media id that cannot be attached (`media-not-attachable`)"},
        503: {"description": "The media service did not answer (with `media_ids`); nothing was written"},
    },
)
async def create_post(
    body: PostCreate,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
    attaching: AttachingDep,
    groups: GroupsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PostPublic | Response:
    """The author is the token's persona and the context the token's context. Mentions
    (`@handle`) and tags (`#tag`) are parsed from the body; an `Idempotency-Key` makes a retry
    safe. `media_ids` attaches up to four of the caller's own uploads (`POST /api/v1/media`),
    ready and attached to nothing else; a post with files may have no text."""
    assert caller.persona_id is not None
    async with attaching:
        return await idempotency.keys.create(
            session,
            response,
            owner=caller.persona_id,
            key=idempotency_key,
            scope="create_post",
            request=body,
            make=lambda: posting.publish(session, outbox, caller, body, attaching, groups=groups),
        )


@router.get(
    "",
    summary="Search posts the caller can see",
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
    """The same search as `GET /api/v1/search/posts`: best first among the newest 200 matches,
    then the older ones, newest first; each post with an excerpt (`highlight`). The caller's
    context only, and nothing from a group the caller cannot read."""
    found = await search.posts(session, database, caller, q, cursor=cursor, limit=limit)
    return json_page(request, found.items, found.after, limit)


@router.get("/{post_id}", summary="A post")
async def get_post(post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona) -> PostPublic:
    return post_public(await visible_post(session, caller, post_id))


@router.patch(
    "/{post_id}",
    summary="Edit a post",
    responses={
        403: {"description": "Not the author (or, for pinned_until, not allowed to announce)"},
        409: {"description": "pinned_until on a post that is not to the organisation"},
    },
)
async def update_post(
    post_id: uuid.UUID, body: PostUpdate, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep
) -> PostPublic:
    """The author edits the text and links; each edit keeps the text it replaced in the
    history. Administrators and communications set or clear an announcement's `pinned_until`
    (send `null` to unpin)."""
    return await posting.edit(session, outbox, caller, post_id, body)


@router.get("/{post_id}/history", summary="Earlier texts of an edited post")
async def list_post_history(
    post_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[RevisionPublic]:
    """Newest edit first; visible to whoever can see the post."""
    found = await reading.history(session, caller, post_id, cursor=cursor, limit=limit)
    return page_of(request, response, found, limit=limit, item=revision_public)


@router.delete(
    "/{post_id}",
    status_code=204,
    summary="Delete a post",
    responses={403: {"description": "Not the author, a moderator of the post's group, or staff"}},
)
async def delete_post(
    post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep
) -> None:
    """Removed from every timeline at once. The author may delete, and so may a moderator or
    owner of the post's group, and a moderator or administrator."""
    await posting.remove(session, outbox, caller, post_id)


PIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not an owner of the post's group"},
    409: {"description": "Not a group post"},
}


@router.put("/{post_id}/pin", summary="Pin a post in its group (group owners)", responses=PIN_RESPONSES)
async def pin_post(post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona) -> PostPublic:
    """Pinned posts lead the group's timeline, most recently pinned first."""
    return await posting.pin(session, caller, post_id)


@router.delete("/{post_id}/pin", summary="Unpin a post in its group (group owners)", responses=PIN_RESPONSES)
async def unpin_post(post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona) -> PostPublic:
    return await posting.unpin(session, caller, post_id)
