"""People search: ``GET /api/v1/search/people`` (the gateway routes ``/api/v1/search/people``
here; services/identity/search.py holds the rules)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from kit import search as kit_search
from kit.db import DatabaseDep, ReadSessionDep
from kit.pagination import Cursor, Limit, Page, paginate
from services.identity import search
from services.identity.deps import ReadCallerDep
from services.identity.schemas import PersonaSearchItem, persona_search_item

router = APIRouter(prefix="/api/v1/search", tags=["search"])


@router.get(
    "/people",
    summary="Search the people of the caller's context by name, handle, job, department and skills",
    responses=kit_search.PROBLEMS,
)
async def search_people(
    request: Request,
    response: Response,
    session: ReadSessionDep,
    database: DatabaseDep,
    caller: ReadCallerDep,
    q: Annotated[
        str,
        kit_search.query_parameter(
            "Words (all must match; a misspelled word of four letters or more still finds), "
            '"a phrase", OR, -excluded.'
        ),
    ],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[PersonaSearchItem]:
    """Only personas the directory lists to the caller: its own context's, active, and never a
    personal persona that is not discoverable. Best match first, then by handle; each with a
    line of its profile where the query matched. A query with nothing to find answers an empty
    page."""
    query, hits = await search.people(session, database, caller.persona.kind, q, cursor=cursor, limit=limit)
    page = paginate(request, response, hits, limit=limit, scope=search.scope(query), key=search.cursor_key)
    return Page[PersonaSearchItem](
        items=[persona_search_item(h.persona, h.highlight) for h in page.items], next_cursor=page.next_cursor
    )
