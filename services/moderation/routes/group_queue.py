"""Moderation's HTTP routes: a group's queue, for its owners and moderators. The path sits
under groups' prefix; the gateway routes it here (decision 0032)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.moderation import queue
from services.moderation.deps import CurrentPersona, QueueFilters, SessionDep
from services.moderation.schemas import ReportSummary, report_summary

router = APIRouter(prefix="/api/v1/groups", tags=["moderation"])


@router.get(
    "/{group_id:uuid}/reports",
    summary="A group's review queue, oldest first",
    responses={
        400: {"description": "`bad-cursor`"},
        404: {"description": "`not-found`: no such group, or the caller is neither its owner nor moderator"},
    },
)
async def list_group_queue(
    group_id: uuid.UUID,
    request: Request,
    response: Response,
    caller: CurrentPersona,
    filters: QueueFilters,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ReportSummary]:
    """The reports on the group's posts and comments, for its owners and moderators (and
    staff). Anyone else gets the answer of a missing group."""
    await queue.group_queue_of(session, caller, group_id)
    scope = f"group-queue:{group_id}"
    after = decode_id_cursor(scope, cursor)
    assert caller.persona_id is not None
    rows = await queue.listing(
        session, filters, caller.persona_id, group_id=group_id, after=after, limit=limit
    )
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r.id)])
    return Page[ReportSummary](items=[report_summary(r) for r in page.items], next_cursor=page.next_cursor)
