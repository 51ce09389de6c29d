"""Notices and appeals (decision 0032, "Actions", "The persona boundary").

Every action but a dismissal and a release tells each persona it concerns what was done and
why (category, rules, until when), never who reported it or who acted. The persona may appeal
each notice once, before its ``appeal_by``: the appeal is a report of kind ``appeal`` in the
queue, which the moderator who acted may not decide. A suspended persona reaches its notices,
and appeals, with a ``notices`` token.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.errors import Conflict, NotFound
from kit.outbox import Outbox
from kit.timeutil import as_utc, utcnow
from services.moderation.actions import report_event
from services.moderation.models import Action, Notice, Report

NOTICE_NOT_FOUND = "No such notice."


async def mine(
    session: AsyncSession, persona_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[tuple[Notice, Report | None]]:
    """The persona's notices, newest first, each with its appeal; ``limit + 1`` rows."""
    query = (
        select(Notice, Report)
        .join(Report, col(Report.id) == col(Notice.appeal_id), isouter=True)
        .where(col(Notice.persona_id) == persona_id)
    )
    if before is not None:
        query = query.where(col(Notice.id) < before)
    rows = await session.execute(query.order_by(col(Notice.id).desc()).limit(limit + 1))
    return [(notice, appeal) for notice, appeal in rows.all()]


async def one(
    session: AsyncSession, persona_id: uuid.UUID, notice_id: uuid.UUID
) -> tuple[Notice, Report | None]:
    notice = await session.get(Notice, notice_id)
    if notice is None or notice.persona_id != persona_id:
        raise NotFound(NOTICE_NOT_FOUND)
    appeal = await session.get(Report, notice.appeal_id) if notice.appeal_id is not None else None
    return notice, appeal


def _exists() -> Conflict:
    return Conflict("This notice has been appealed already.", slug="appeal-exists")


async def appeal(
    session: AsyncSession, outbox: Outbox, persona_id: uuid.UUID, notice_id: uuid.UUID, text: str
) -> tuple[Notice, Report]:
    """Files the one appeal of a notice. The notice takes it with a conditional UPDATE, so
    that two appeals sent at once make one."""
    notice, existing = await one(session, persona_id, notice_id)
    if existing is not None or notice.appeal_id is not None:
        raise _exists()
    if utcnow() > as_utc(notice.appeal_by):
        raise Conflict("The time to appeal this notice is over.", slug="appeal-closed")
    action = await session.get(Action, notice.action_id)
    assert action is not None
    if action.reverted_at is not None:
        raise Conflict("The action has been reverted already.", slug="appeal-closed")
    report = Report(
        kind="appeal",
        reporter_id=persona_id,
        target_type=notice.target_type,
        target_id=notice.target_id,
        context=notice.context,
        subject_id=persona_id,
        group_id=None,  # appeals are decided by staff
        category=notice.category,
        rules=list(notice.rules),
        comment=text,
        appeal_of=action.id,
        excluded_moderator_id=action.moderator_id,
    )
    session.add(report)
    await session.flush()
    result: Any = await session.execute(
        update(Notice)
        .where(col(Notice.id) == notice.id, col(Notice.appeal_id).is_(None))
        .values(appeal_id=report.id)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        await session.rollback()
        raise _exists()
    await outbox.publish(session, "moderation.report.created", str(report.id), report_event(report))
    await session.commit()
    refreshed = await session.get(Notice, notice.id, populate_existing=True)
    assert refreshed is not None
    return refreshed, report
