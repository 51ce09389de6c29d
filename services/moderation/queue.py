"""The review queue: listing reports (for staff, or narrowed to one group for its owners and
moderators), a report's review, and assigning, unassigning and reopening it.

Every change of a report is one conditional ``UPDATE … SET version = version + 1 WHERE id = :id
AND version = :seen AND …`` (decision 0032, "Concurrency"): on PostgreSQL the second of two
parallel changes waits on the first's row lock, then matches no row, and its 409 says why,
read back from the row. A report the caller may not act on is answered as missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.errors import Conflict, Forbidden, NotFound
from services.moderation.models import (
    Action,
    Evidence,
    GroupReplica,
    GroupRoleReplica,
    PersonaReplica,
    Report,
)
from services.moderation.schemas import ReportReview, report_review
from services.moderation.staff import Actor, acting_as, group_role, staff_member

REPORT_NOT_FOUND = "No such report."
GROUP_NOT_FOUND = "No such group."


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    category: str | None = None
    target_type: str | None = None
    context: str | None = None
    assignee_id: uuid.UUID | None = None


def not_about(viewer: uuid.UUID) -> list[ColumnElement[bool]]:
    """Leaves out the reports that concern ``viewer`` (``staff.concerns``): about itself or
    its content, or about a group it owns or moderates."""
    its_groups = select(col(GroupRoleReplica.group_id)).where(col(GroupRoleReplica.persona_id) == viewer)
    return [
        or_(col(Report.subject_id).is_(None), col(Report.subject_id) != viewer),
        or_(col(Report.target_type) != "group", col(Report.target_id).not_in(its_groups)),
    ]


async def listing(
    session: AsyncSession,
    filters: Filters,
    viewer: uuid.UUID,
    *,
    group_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    limit: int,
) -> list[Report]:
    """Oldest first (by id, which is time-ordered), without the reports that concern the
    viewer; ``limit + 1`` rows for the pager."""
    conditions: list[ColumnElement[bool]] = not_about(viewer)
    if group_id is not None:
        conditions.append(col(Report.group_id) == group_id)
    for column, value in (
        (Report.status, filters.status),
        (Report.category, filters.category),
        (Report.target_type, filters.target_type),
        (Report.context, filters.context),
        (Report.assignee_id, filters.assignee_id),
    ):
        if value is not None:
            conditions.append(col(column) == value)
    if after is not None:
        conditions.append(col(Report.id) > after)
    rows = await session.scalars(select(Report).where(*conditions).order_by(col(Report.id)).limit(limit + 1))
    return list(rows.all())


async def group_queue_of(session: AsyncSession, caller: Principal, group_id: uuid.UUID) -> None:
    """Lets through staff (for a group moderation knows) and the group's owners and
    moderators; anyone else gets the 404 of a missing group."""
    assert caller.persona_id is not None
    if await staff_member(session, caller) is not None:
        if await session.get(GroupReplica, group_id) is not None:
            return
    elif await group_role(session, group_id, caller.persona_id) is not None:
        return
    raise NotFound(GROUP_NOT_FOUND)


async def report_for(session: AsyncSession, caller: Principal, report_id: uuid.UUID) -> tuple[Report, Actor]:
    """The report, and the caller as it may act on it; 404 for anyone who may not."""
    report = await session.get(Report, report_id)
    if report is None:
        raise NotFound(REPORT_NOT_FOUND)
    actor = await acting_as(session, caller, report)
    if actor is None:
        raise NotFound(REPORT_NOT_FOUND)
    return report, actor


async def review(session: AsyncSession, report: Report) -> ReportReview:
    """The report with its evidence, its actions and the personas it names, from
    moderation's own tables."""
    evidence = await session.scalars(
        select(Evidence).where(col(Evidence.report_id) == report.id).order_by(col(Evidence.ordinal))
    )
    actions = await session.scalars(
        select(Action)
        .where(col(Action.report_id) == report.id)
        .order_by(col(Action.created_at), col(Action.id))
    )
    ids = {i for i in (report.subject_id, report.reporter_id, report.assignee_id) if i is not None}
    personas = await session.scalars(select(PersonaReplica).where(col(PersonaReplica.id).in_(ids)))
    return report_review(report, {p.id: p for p in personas}, list(evidence.all()), list(actions.all()))


def refuse_excluded(report: Report, actor: Actor) -> None:
    """The moderator who took an action never decides its appeal."""
    if report.kind == "appeal" and report.excluded_moderator_id == actor.persona_id:
        raise Forbidden(
            "An appeal is decided by another moderator than the one who acted.", slug="appeal-same-moderator"
        )


async def change(
    session: AsyncSession,
    report_id: uuid.UUID,
    seen: int,
    conditions: Sequence[ColumnElement[bool]],
    values: dict[str, Any],
) -> bool:
    """The one conditional UPDATE every change of a report is; whether it matched."""
    result: Any = await session.execute(
        update(Report)
        .where(col(Report.id) == report_id, col(Report.version) == seen, *conditions)
        .values(version=col(Report.version) + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def open_to(me: uuid.UUID) -> list[ColumnElement[bool]]:
    """Not resolved, and unassigned or assigned to ``me``."""
    return [
        col(Report.status) != "resolved",
        or_(col(Report.assignee_id).is_(None), col(Report.assignee_id) == me),
    ]


async def refusal(
    session: AsyncSession, report_id: uuid.UUID, me: uuid.UUID, *, want: str = "open"
) -> Conflict:
    """Why a change matched no row, read back from the report as it is now."""
    await session.rollback()
    report = await session.get(Report, report_id, populate_existing=True)
    if report is None:
        raise NotFound(REPORT_NOT_FOUND)
    if want == "resolved":
        if report.status != "resolved":
            return Conflict("The report is not resolved.", slug="report-not-resolved")
    elif report.status == "resolved":
        return Conflict("The report is resolved already.", slug="report-resolved")
    elif want == "assigned" and report.status != "assigned":
        return Conflict("The report is not assigned.", slug="report-not-assigned")
    elif report.assignee_id is not None and report.assignee_id != me:
        return Conflict("Another moderator has the report.", slug="report-assigned")
    return Conflict("The report changed meanwhile; read it again.", slug="report-changed")


async def fresh(session: AsyncSession, report_id: uuid.UUID) -> Report:
    report = await session.get(Report, report_id, populate_existing=True)
    assert report is not None
    return report


async def assign(session: AsyncSession, caller: Principal, report_id: uuid.UUID) -> Report:
    """Assigns the report to the caller; assigning it again changes nothing."""
    report, actor = await report_for(session, caller, report_id)
    refuse_excluded(report, actor)
    me = actor.persona_id
    if report.status == "assigned" and report.assignee_id == me:
        return report
    if not await change(
        session, report.id, report.version, open_to(me), {"status": "assigned", "assignee_id": me}
    ):
        raise await refusal(session, report.id, me)
    await session.commit()
    return await fresh(session, report.id)


async def unassign(session: AsyncSession, caller: Principal, report_id: uuid.UUID) -> Report:
    """Gives the report back to the queue: its assignee, or an administrator, may."""
    report, actor = await report_for(session, caller, report_id)
    me = actor.persona_id
    conditions: list[ColumnElement[bool]] = [col(Report.status) == "assigned"]
    if not actor.is_admin:
        conditions.append(col(Report.assignee_id) == me)
    if not await change(
        session, report.id, report.version, conditions, {"status": "open", "assignee_id": None}
    ):
        raise await refusal(session, report.id, me, want="assigned")
    await session.commit()
    return await fresh(session, report.id)


async def reopen(session: AsyncSession, caller: Principal, report_id: uuid.UUID) -> Report:
    """Staff put a resolved report back in the queue; the action taken stays in force."""
    report, actor = await report_for(session, caller, report_id)
    if not actor.is_staff:
        raise Forbidden("Only staff reopen a report.", slug="not-a-moderator")
    values = {
        "status": "open",
        "assignee_id": None,
        "resolved_by": None,
        "resolved_at": None,
        "action": None,
        "reason": None,
    }
    try:
        changed = await change(session, report.id, report.version, [col(Report.status) == "resolved"], values)
    except IntegrityError as exc:
        # the reporter has filed again on the target since: one open report each
        await session.rollback()
        raise Conflict("The reporter has another open report on this target.", slug="report-changed") from exc
    if not changed:
        raise await refusal(session, report.id, actor.persona_id, want="resolved")
    await session.commit()
    return await fresh(session, report.id)
