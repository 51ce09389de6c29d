"""Moderation's HTTP routes: filing a report, and a reporter's own reports."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.moderation import reporting
from services.moderation.deps import CurrentPersona, LookupDep, OutboxDep, SessionDep, SettingsDep
from services.moderation.schemas import ReportCreate, ReportPublic, report_public

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.post(
    "",
    status_code=201,
    summary="Report a post, a comment, a persona or a group",
    responses={
        200: {"description": "The caller's open report on this target, as it is", "model": ReportPublic},
        201: {"description": "Filed; `Location` names it"},
        403: {"description": "A client's token (`forbidden`), or a `notices` token (`notices-only`)"},
        404: {
            "description": "`not-found`: the target is missing, of the other context, or not visible "
            "to the caller; so is an added post"
        },
        422: {
            "description": "`validation` (category, comment, more than 5 `post_ids`, added posts by "
            "another author), `self-report`, `unknown-rule` (a rule the code of conduct in force lacks)"
        },
        429: {"description": "`rate-limited`: too many reports in the last hour; see `Retry-After`"},
        503: {"description": "`target-unavailable`: the content's service did not answer; `Retry-After: 1`"},
    },
)
async def file_report(
    body: ReportCreate,
    caller: CurrentPersona,
    session: SessionDep,
    outbox: OutboxDep,
    lookup: LookupDep,
    settings: SettingsDep,
    response: Response,
) -> ReportPublic:
    """The reporter is never shown to the persona reported. A second report of the same
    target while the first is open answers the first (200) and does not count against the
    hourly limit."""
    filed = await reporting.file(session, outbox, lookup, caller, body, settings.reports_per_hour)
    if filed.created:
        response.headers["Location"] = f"/api/v1/reports/{filed.report.id}"
    else:
        response.status_code = 200
    return report_public(filed.report)


@router.get(
    "",
    summary="The caller's own reports, newest first, with their outcome",
    responses={
        400: {"description": "`bad-cursor`"},
        403: {"description": "`notices-only`, or a client's token"},
    },
)
async def list_reports(
    request: Request,
    response: Response,
    caller: CurrentPersona,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ReportPublic]:
    """Each report's `outcome` once resolved (`action_taken` or `no_action`); never who
    handled it."""
    assert caller.persona_id is not None
    scope = "my-reports"
    before = decode_id_cursor(scope, cursor)
    rows = await reporting.mine(session, caller.persona_id, before, limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r.id)])
    return Page[ReportPublic](items=[report_public(r) for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{report_id:uuid}",
    summary="One of the caller's own reports",
    responses={404: {"description": "`not-found`: no such report of the caller's"}},
)
async def get_report(report_id: uuid.UUID, caller: CurrentPersona, session: SessionDep) -> ReportPublic:
    assert caller.persona_id is not None
    return report_public(await reporting.one_of_mine(session, caller.persona_id, report_id))
