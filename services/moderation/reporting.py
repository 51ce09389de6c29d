"""Filing a report, and a reporter's own reports (decision 0032, "Endpoints", "Concurrency,
limits and the lookup").

A persona reports a post, a comment, a persona or a group it can see. The checks that need no
other service come first (an open report of the reporter on the target is answered as it is,
the cited rules, the hourly limit), then the one call to the content's owner, which also gives
the evidence. The write transaction locks the reporter's replica row and counts again, so that
parallel filings cannot pass the limit; the partial unique index turns a racing duplicate
into the existing report. A refusal writes nothing.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.errors import NotFound, TooManyRequests, Unprocessable
from kit.outbox import Outbox
from kit.timeutil import as_utc, utcnow
from services.moderation import conduct
from services.moderation.actions import report_event
from services.moderation.lookup import Item, Lookup, not_found
from services.moderation.models import Evidence, PersonaReplica, Report, Term
from services.moderation.schemas import ReportCreate

HOUR = timedelta(hours=1)
SELF_REPORT = "A persona cannot report itself or its own content."


@dataclass
class Filed:
    report: Report
    created: bool


@dataclass
class Subject:
    """What the lookup established about a target: its context, the persona concerned, its
    group, and the evidence to keep."""

    context: str
    subject_id: uuid.UUID | None
    group_id: uuid.UUID | None
    items: list[Item] = field(default_factory=list)


async def open_report(
    session: AsyncSession, reporter_id: uuid.UUID, target_type: str, target_id: uuid.UUID
) -> Report | None:
    """The reporter's unresolved report on the target, if any."""
    found = await session.scalars(
        select(Report).where(
            col(Report.reporter_id) == reporter_id,
            col(Report.target_type) == target_type,
            col(Report.target_id) == target_id,
            col(Report.kind) == "report",
            col(Report.status) != "resolved",
        )
    )
    return found.first()


async def check_rules(session: AsyncSession, rules: list[int]) -> int:
    """The version of the code of conduct in force; 422 ``unknown-rule`` for a rule it lacks."""
    version, numbers = await conduct.rule_numbers(session)
    unknown = sorted(set(rules) - numbers)
    if unknown:
        raise Unprocessable(
            "The code of conduct in force (version {version}) has no rule {rules}.",
            params={"version": version, "rules": ", ".join(map(str, unknown))},
            slug="unknown-rule",
        )
    return version


async def _check_limit(session: AsyncSession, reporter_id: uuid.UUID, per_hour: int, now: datetime) -> None:
    """429 with ``Retry-After`` once the reporter filed ``per_hour`` reports in the last hour:
    the wait is until the oldest of them leaves the hour."""
    since = now - HOUR
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(col(Report.created_at))).where(
                col(Report.reporter_id) == reporter_id,
                col(Report.kind) == "report",
                col(Report.created_at) > since,
            )
        )
    ).one()
    if int(count or 0) < per_hour:
        return
    wait = (as_utc(oldest) + HOUR - now).total_seconds() if oldest is not None else 1
    raise TooManyRequests(
        "At most {limit} reports an hour; try again later.",
        params={"limit": per_hour},
        retry_after=math.ceil(wait),
    )


async def _persona_target(session: AsyncSession, caller: Principal, persona_id: uuid.UUID) -> Subject:
    """A persona is checked on moderation's own replica: of the reporter's context, and active."""
    persona = await session.get(PersonaReplica, persona_id)
    if persona is None or persona.context != caller.context or persona.status != "active":
        raise not_found()
    return Subject(context=persona.context, subject_id=persona.id, group_id=None)


async def _subject(session: AsyncSession, lookup: Lookup, caller: Principal, body: ReportCreate) -> Subject:
    """Asks the owner about the target and each added post: all must be visible to the
    reporter, of its context, and the added posts by the same author."""
    assert caller.persona_id is not None
    target = body.target
    if target.type == "persona" and target.id == caller.persona_id:
        raise Unprocessable(SELF_REPORT, slug="self-report")
    if target.type == "persona":
        subject = await _persona_target(session, caller, target.id)
    elif target.type == "group":
        item = await lookup.group(target.id, caller.persona_id)
        # the group's own reports are for staff: its owners are the ones concerned
        subject = Subject(context=item.context, subject_id=None, group_id=None, items=[item])
    else:
        item = await lookup.content(target.type, target.id, caller.persona_id)
        subject = Subject(
            context=item.context, subject_id=item.author_id, group_id=item.group_id, items=[item]
        )
    if subject.context != caller.context:
        raise not_found()
    if subject.subject_id == caller.persona_id:
        raise Unprocessable(SELF_REPORT, slug="self-report")
    extra = [p for p in dict.fromkeys(body.post_ids) if not (target.type == "post" and p == target.id)]
    if extra and subject.subject_id is None:
        raise _post_ids_error("Added posts go with a report on a persona or on its content.")
    for post_id in extra:
        item = await lookup.content("post", post_id, caller.persona_id)
        if item.context != caller.context:
            raise not_found()
        if item.author_id != subject.subject_id:
            raise _post_ids_error("Every added post must be by the same author.")
        subject.items.append(item)
    return subject


def _post_ids_error(message: str) -> Unprocessable:
    return Unprocessable(
        "The request has invalid fields.",
        errors=[{"location": "body.post_ids", "message": message, "code": "value_error"}],
    )


async def _lock_reporter(session: AsyncSession, reporter_id: uuid.UUID) -> None:
    """A row lock on PostgreSQL, the write lock on SQLite: parallel filings of one reporter
    count one after the other."""
    await session.execute(
        update(PersonaReplica)
        .where(col(PersonaReplica.id) == reporter_id)
        .values(updated_at=col(PersonaReplica.updated_at))
        .execution_options(synchronize_session=False)
    )


def _evidence(report_id: uuid.UUID, items: list[Item]) -> list[Evidence]:
    return [
        Evidence(
            report_id=report_id,
            ordinal=ordinal,
            item_type=item.item_type,
            item_id=item.item_id,
            post_id=item.post_id,
            author_id=item.author_id,
            body=item.body,
            links=list(item.links),
            created_at=item.created_at,
        )
        for ordinal, item in enumerate(items)
    ]


async def file(
    session: AsyncSession,
    outbox: Outbox,
    lookup: Lookup,
    caller: Principal,
    body: ReportCreate,
    per_hour: int,
) -> Filed:
    """Files the report, or answers the reporter's open one on the same target."""
    reporter_id = caller.persona_id
    assert reporter_id is not None
    target = body.target
    existing = await open_report(session, reporter_id, target.type, target.id)
    if existing is not None:
        return Filed(existing, created=False)
    conduct_version = await check_rules(session, body.rules)
    await _check_limit(session, reporter_id, per_hour, utcnow())
    await session.rollback()  # no transaction stays open while the owner is asked
    subject = await _subject(session, lookup, caller, body)

    await _lock_reporter(session, reporter_id)
    existing = await open_report(session, reporter_id, target.type, target.id)
    if existing is not None:
        return Filed(existing, created=False)
    await _check_limit(session, reporter_id, per_hour, utcnow())
    report = Report(
        kind="report",
        reporter_id=reporter_id,
        target_type=target.type,
        target_id=target.id,
        context=subject.context,
        subject_id=subject.subject_id,
        group_id=subject.group_id,
        category=body.category,
        rules=sorted(set(body.rules)),
        conduct_version=conduct_version,
        comment=body.comment,
    )
    session.add(report)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raced = await open_report(session, reporter_id, target.type, target.id)
        if raced is None:
            raise
        return Filed(raced, created=False)
    session.add_all(_evidence(report.id, subject.items))
    await outbox.publish(session, "moderation.report.created", str(report.id), report_event(report))
    await session.commit()
    return Filed(report, created=True)


async def file_held(
    session: AsyncSession,
    outbox: Outbox,
    item: Item,
    term_ids: list[uuid.UUID],
) -> Report | None:
    """A post or comment that feed held for the terms becomes a ``system`` report, category
    ``other``, on the item. Once per item while one is unresolved. The caller commits."""
    found = await session.scalars(
        select(col(Report.id)).where(
            col(Report.kind) == "system",
            col(Report.target_type) == item.item_type,
            col(Report.target_id) == item.item_id,
            col(Report.status) != "resolved",
        )
    )
    if found.first() is not None:
        return None
    report = Report(
        kind="system",
        reporter_id=None,
        target_type=item.item_type,
        target_id=item.item_id,
        context=item.context,
        subject_id=item.author_id,
        group_id=item.group_id,
        category="other",
        comment=await _held_for(session, term_ids),
    )
    session.add(report)
    await session.flush()
    session.add_all(_evidence(report.id, [item]))
    await outbox.publish(session, "moderation.report.created", str(report.id), report_event(report))
    return report


async def _held_for(session: AsyncSession, term_ids: list[uuid.UUID]) -> str:
    """The system report's comment: the terms the item matched, as they are now."""
    if not term_ids:
        return "Held for review: it matched the held-content terms."
    rows = await session.scalars(
        select(col(Term.term)).where(col(Term.id).in_(term_ids[:100])).order_by(col(Term.term))
    )
    terms = list(rows.all())
    if not terms:
        return "Held for review: it matched terms since removed."
    return ("Held for review: it matched " + ", ".join(f"“{t}”" for t in terms) + ".")[:1000]


async def mine(
    session: AsyncSession, reporter_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[Report]:
    """The reporter's own reports, newest first; ``limit + 1`` rows for the pager."""
    query = select(Report).where(col(Report.reporter_id) == reporter_id, col(Report.kind) == "report")
    if before is not None:
        query = query.where(col(Report.id) < before)
    rows = await session.scalars(query.order_by(col(Report.id).desc()).limit(limit + 1))
    return list(rows.all())


async def one_of_mine(session: AsyncSession, reporter_id: uuid.UUID, report_id: uuid.UUID) -> Report:
    report = await session.get(Report, report_id)
    if report is None or report.reporter_id != reporter_id or report.kind != "report":
        raise NotFound("No such report of yours.")
    return report
