"""Moderation's HTTP routes: the review queue, a report's review, and what moderators do
with a report (assign, unassign, resolve, reopen)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.moderation import queue, resolving
from services.moderation.deps import CurrentPersona, OutboxDep, QueueFilters, SessionDep, SettingsDep, Staff
from services.moderation.schemas import ReportReview, ReportSummary, ResolveRequest, report_summary

router = APIRouter(prefix="/api/v1/moderation/reports", tags=["moderation"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "`not-found`: no such report, or not one the caller may act on (staff act on "
        "every report; a group's owners and moderators on the reports of its content)"
    }
}
CONFLICTS = (
    "`report-resolved`, `report-assigned` (another moderator has it), `report-changed` (changed "
    "since it was read)"
)


@router.get(
    "",
    summary="The review queue, oldest first",
    responses={
        400: {"description": "`bad-cursor`"},
        403: {"description": "`not-a-moderator`: not a professional token with a role still held"},
    },
)
async def list_queue(
    request: Request,
    response: Response,
    staff: Staff,
    filters: QueueFilters,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ReportSummary]:
    """Reports of both contexts, each labelled with its own; for staff (a `moderator` or
    `admin` role, acting through the professional persona)."""
    scope = "queue"
    after = decode_id_cursor(scope, cursor)
    rows = await queue.listing(session, filters, staff.persona_id, after=after, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r.id)])
    return Page[ReportSummary](items=[report_summary(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{report_id:uuid}", summary="A report's review", responses=NOT_FOUND)
async def get_review(report_id: uuid.UUID, caller: CurrentPersona, session: SessionDep) -> ReportReview:
    """The report, its evidence as captured at filing, the persona concerned and the
    reporter (their persona only), the assignee and the actions taken."""
    report, _ = await queue.report_for(session, caller, report_id)
    return await queue.review(session, report)


@router.post(
    "/{report_id:uuid}/assign",
    summary="Take a report",
    responses={
        **NOT_FOUND,
        403: {"description": "`appeal-same-moderator`: the caller took the action appealed"},
        409: {"description": CONFLICTS},
    },
)
async def assign(report_id: uuid.UUID, caller: CurrentPersona, session: SessionDep) -> ReportSummary:
    """Assigning a report already the caller's changes nothing."""
    return report_summary(await queue.assign(session, caller, report_id))


@router.post(
    "/{report_id:uuid}/unassign",
    summary="Give a report back to the queue",
    responses={
        **NOT_FOUND,
        409: {"description": "`report-not-assigned`, `report-resolved`, `report-assigned` (another's)"},
    },
)
async def unassign(report_id: uuid.UUID, caller: CurrentPersona, session: SessionDep) -> ReportSummary:
    """Its assignee, or an administrator, may."""
    return report_summary(await queue.unassign(session, caller, report_id))


@router.post(
    "/{report_id:uuid}/resolve",
    summary="Resolve a report with an action",
    responses={
        **NOT_FOUND,
        403: {
            "description": "`action-not-allowed` (an action for staff asked with a group's role), "
            "`appeal-same-moderator`"
        },
        409: {"description": CONFLICTS},
        422: {
            "description": "`validation` (no `reason`; `until` in the past or on an action without one), "
            "`action-not-applicable`, `duration-required` (a limit without `until`), `unknown-rule`"
        },
    },
)
async def resolve(
    report_id: uuid.UUID,
    body: ResolveRequest,
    caller: CurrentPersona,
    session: SessionDep,
    outbox: OutboxDep,
    settings: SettingsDep,
) -> ReportReview:
    """Applies the action through its owners' events (decision 0032, "Actions"), records it
    in the audit log and gives each persona concerned a notice."""
    report = await resolving.resolve(session, outbox, caller, report_id, body, settings.appeal_days)
    return await queue.review(session, report)


@router.post(
    "/{report_id:uuid}/reopen",
    summary="Put a resolved report back in the queue",
    responses={
        **NOT_FOUND,
        403: {"description": "`not-a-moderator`: a group's role may not reopen"},
        409: {"description": "`report-not-resolved`, `report-changed`"},
    },
)
async def reopen(report_id: uuid.UUID, caller: CurrentPersona, session: SessionDep) -> ReportSummary:
    """The action taken stays in force; the report can be resolved again."""
    return report_summary(await queue.reopen(session, caller, report_id))
