"""Moderation's HTTP routes: a persona's notices, and its appeals. A suspended persona
reaches them with a `notices` token."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.moderation import notices
from services.moderation.deps import NoticesPersona, OutboxDep, SessionDep
from services.moderation.schemas import AppealCreate, NoticePublic, notice_public

router = APIRouter(prefix="/api/v1/me/notices", tags=["notices"])


@router.get(
    "",
    summary="The actions taken against the caller or its content, newest first",
    responses={400: {"description": "`bad-cursor`"}},
)
async def list_notices(
    request: Request,
    response: Response,
    caller: NoticesPersona,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[NoticePublic]:
    """The action, its category and rules, until when, the target and the appeal; never who
    reported or who acted. Takes a `notices` token too."""
    assert caller.persona_id is not None
    scope = "notices"
    before = decode_id_cursor(scope, cursor)
    rows = await notices.mine(session, caller.persona_id, before, limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r[0].id)])
    return Page[NoticePublic](
        items=[notice_public(n, a) for n, a in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/{notice_id:uuid}",
    summary="One notice",
    responses={404: {"description": "`not-found`: no such notice of the caller's"}},
)
async def get_notice(notice_id: uuid.UUID, caller: NoticesPersona, session: SessionDep) -> NoticePublic:
    assert caller.persona_id is not None
    return notice_public(*await notices.one(session, caller.persona_id, notice_id))


@router.post(
    "/{notice_id:uuid}/appeal",
    status_code=201,
    summary="Appeal a notice, once",
    responses={
        201: {"description": "Appealed; the notice with its appeal. `Location` names the notice"},
        404: {"description": "`not-found`: no such notice of the caller's"},
        409: {"description": "`appeal-exists` (appealed already), `appeal-closed` (too late, or reverted)"},
        422: {"description": "`validation`: the text is missing, blank or over 2000 characters"},
    },
)
async def appeal(
    notice_id: uuid.UUID,
    body: AppealCreate,
    caller: NoticesPersona,
    session: SessionDep,
    outbox: OutboxDep,
    response: Response,
) -> NoticePublic:
    """The appeal joins the queue; a moderator other than the one who acted decides it, and
    upholding it reverts the action. Takes a `notices` token too."""
    assert caller.persona_id is not None
    notice, report = await notices.appeal(session, outbox, caller.persona_id, notice_id, body.text)
    response.headers["Location"] = f"/api/v1/me/notices/{notice.id}"
    return notice_public(notice, report)
