"""Groups' search route: ``GET /api/v1/search/groups`` (the gateway routes ``/api/v1/search/
groups`` here; services/groups/search.py holds the rules)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from kit import search as kit_search
from kit.pagination import Cursor, Limit, Page, next_link
from services.groups import search
from services.groups.deps import CurrentPersona, SessionDep
from services.groups.schemas import GroupSearchItem, group_search_item

router = APIRouter(prefix="/api/v1/search", tags=["search"])


@router.get(
    "/groups",
    summary="Search the groups of the caller's context by name, purpose, tags and charter",
    responses=kit_search.PROBLEMS,
)
async def search_groups(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    q: Annotated[
        str,
        kit_search.query_parameter(
            'Words (all must match), "a phrase", OR, -excluded, tag: (or #tag), since:, until:.'
        ),
    ],
    archived: Annotated[bool, Query(description="Archived groups instead of active ones")] = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[GroupSearchItem]:
    """The groups the directory shows the caller, best match first (a match in the name counts
    most, then the purpose, the tags and the charter; newer groups first among equals), each
    with a snippet of where it matched. A query with nothing to find answers an empty page."""
    query = kit_search.parse(q)
    scope = kit_search.cursor_scope("groups-archived" if archived else "groups", query)
    position = search.decode_position(scope, cursor)
    results = await search.search_groups(
        session, caller, query, archived=archived, position=position, limit=limit
    )
    next_cursor = None
    if results.next is not None:
        next_cursor = kit_search.encode_position(scope, results.next)
        response.headers["Link"] = next_link(request, next_cursor, limit)
    return Page[GroupSearchItem](
        items=[group_search_item(f.group, f.role, f.highlight) for f in results.found],
        next_cursor=next_cursor,
    )
