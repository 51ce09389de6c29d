"""Moderation's HTTP routes: the terms that hold posts and comments for review, kept by
administrators (services/moderation/terms.py holds their rules)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from domain.contexts import Context
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.moderation import terms
from services.moderation.deps import Admin, OutboxDep, SessionDep
from services.moderation.terms import TermCreate, TermPublic, term_public

router = APIRouter(
    prefix="/api/v1/admin/moderation/terms",
    tags=["held content"],
    responses={
        403: {
            "description": "`not-an-admin`: not an administrator acting through a professional persona that "
            "still holds the role; `notices-only`: a `notices` token; `forbidden`: a client's token"
        }
    },
)


@router.get(
    "",
    summary="List the terms that hold content for review (administrators)",
    responses={400: {"description": "`bad-cursor`: a cursor not of this list"}},
)
async def list_terms(
    request: Request,
    response: Response,
    session: SessionDep,
    _admin: Admin,
    context: Annotated[Context | None, Query(description="Only the terms of this context")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[TermPublic]:
    """Oldest first."""
    scope = f"terms:{context or 'all'}"
    after = decode_id_cursor(scope, cursor)
    rows = await terms.find(session, context=context, after=after, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda t: [str(t.id)])
    return Page[TermPublic](items=[term_public(t) for t in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    status_code=201,
    summary="Add a term that holds content for review (administrators)",
    responses={
        409: {
            "description": "`term-exists`: the context has this term with this match already (in "
            "any case); `too-many-terms`: the context holds 500 terms"
        },
        422: {"description": "`validation`: a term not of 2 to 100 characters, an unknown match or context"},
    },
)
async def create_term(body: TermCreate, session: SessionDep, outbox: OutboxDep, _admin: Admin) -> TermPublic:
    """New posts and comments of the context that match it are saved held: visible to their
    author and to the review queue only, until a moderator releases or removes them. Content
    published before is not examined again."""
    return term_public(await terms.add(session, outbox, body))


@router.delete(
    "/{term_id}",
    status_code=204,
    summary="Remove a term (administrators)",
    responses={404: {"description": "`not-found`: no such term"}},
)
async def delete_term(
    term_id: Annotated[uuid.UUID, Path(description="The term's id.")],
    session: SessionDep,
    outbox: OutboxDep,
    _admin: Admin,
) -> None:
    """Content it has held stays held until a moderator decides on it."""
    await terms.remove(session, outbox, term_id)
