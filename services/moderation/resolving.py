"""Resolving a report with an action (decision 0032, "Actions", "Concurrency").

One transaction: the conditional UPDATE of the report (unresolved, unassigned or the caller's,
at the version seen), the action row, its events, its audit entry and its notices. Of two
moderators resolving at once, one wins; the other's UPDATE matches no row and gets a 409 whose
slug says why. An upheld appeal (``revert``) undoes the appealed action once.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.moderation import actions, queue, reporting
from services.moderation.models import Action, Evidence, Report
from services.moderation.schemas import ResolveRequest


async def _post_of(session: AsyncSession, report: Report) -> uuid.UUID | None:
    """A reported comment's post, as the evidence recorded it (the event of an action on a
    comment names it)."""
    if report.target_type != "comment":
        return None
    return await session.scalar(
        select(col(Evidence.post_id)).where(
            col(Evidence.report_id) == report.id, col(Evidence.item_id) == report.target_id
        )
    )


async def _appealed_post(session: AsyncSession, report: Report) -> uuid.UUID | None:
    if report.appeal_of is None:
        return None
    return await session.scalar(select(col(Action.post_id)).where(col(Action.id) == report.appeal_of))


async def resolve(
    session: AsyncSession,
    outbox: Outbox,
    caller: Principal,
    report_id: uuid.UUID,
    body: ResolveRequest,
    appeal_days: int,
) -> Report:
    report, actor = await queue.report_for(session, caller, report_id)
    queue.refuse_excluded(report, actor)
    actions.check(actor, report, body.action, body.until)
    if body.rules:
        await reporting.check_rules(session, body.rules)
    seen = report.version if body.version is None else body.version
    me = actor.persona_id
    now = utcnow()
    values = {
        "status": "resolved",
        "resolved_by": me,
        "action": body.action,
        "reason": body.reason,
        "resolved_at": now,
        "first_action_at": func.coalesce(col(Report.first_action_at), now),
    }
    if not await queue.change(session, report.id, seen, queue.open_to(me), values):
        raise await queue.refusal(session, report.id, me)
    report = await queue.fresh(session, report.id)
    rules = list(report.rules) if body.rules is None else sorted(set(body.rules))
    post_id = (
        await _appealed_post(session, report) if report.kind == "appeal" else await _post_of(session, report)
    )
    action = actions.new_action(actor, report, body.action, body.reason, body.until, post_id)
    if body.action == "revert" and report.appeal_of is not None:
        await actions.revert(session, outbox, report.appeal_of, me)
    await actions.take(session, outbox, action, report, rules, appeal_days)
    await session.commit()
    return report
