"""The organisation's moderation figures (decision 0032, "Retention, records and stats"): counts
and durations only, never a persona, a reporter or a moderator.

The medians are taken here, in Python, over the durations one plain statement reads, the same on
SQLite and PostgreSQL (SQLite has no percentile function). Each median covers what happened in
its window: the time to first action of the reports first acted on in the last 7 (or 30) days,
the time to resolution of the reports resolved in it, each measured from the report's filing.
A report filed long ago and settled today so counts with its whole wait, and an empty window
gives null rather than a zero that would read as instant.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.contexts import CONTEXTS
from services.moderation import actions
from services.moderation.models import Action, Report

WINDOWS = {"last_7_days": timedelta(days=7), "last_30_days": timedelta(days=30)}
ACTION_WINDOW = timedelta(days=30)
# Every action a resolution can take (decision 0032, "Actions"), each counted, zero included.
ACTION_KINDS = tuple(actions.APPLIES)


class CountByContext(BaseModel):
    professional: int
    personal: int


class MedianSeconds(BaseModel):
    last_7_days: float | None = Field(description="Over the last 7 days; null when nothing happened.")
    last_30_days: float | None = Field(description="Over the last 30 days; null when nothing happened.")


class ModerationStats(BaseModel):
    """Counts and durations only: no answer names a persona."""

    open: CountByContext = Field(description="Reports waiting for a moderator, by context.")
    assigned: CountByContext = Field(
        description="Reports a moderator has taken and not resolved, by context."
    )
    first_action_median_seconds: MedianSeconds = Field(
        description="Median seconds from filing to the first action, over the reports first acted "
        "on in the window."
    )
    resolution_median_seconds: MedianSeconds = Field(
        description="Median seconds from filing to resolution, over the reports resolved in the window."
    )
    actions: dict[str, int] = Field(
        description="Actions taken in the last 30 days, by kind (every kind, zero included)."
    )


async def compute(session: AsyncSession, now: datetime) -> ModerationStats:
    """The figures as of ``now``."""
    waiting = {status: dict.fromkeys(CONTEXTS, 0) for status in ("open", "assigned")}
    counted = await session.execute(
        select(col(Report.status), col(Report.context), func.count())
        .where(col(Report.status).in_(tuple(waiting)))
        .group_by(col(Report.status), col(Report.context))
    )
    for status, context, count in counted.all():
        if context in waiting[status]:
            waiting[status][context] = int(count)

    oldest = now - max(WINDOWS.values())
    times = (
        await session.execute(
            select(col(Report.created_at), col(Report.first_action_at), col(Report.resolved_at)).where(
                or_(col(Report.first_action_at) >= oldest, col(Report.resolved_at) >= oldest)
            )
        )
    ).all()

    by_kind = dict.fromkeys(ACTION_KINDS, 0)
    taken = await session.execute(
        select(col(Action.kind), func.count())
        .where(col(Action.created_at) >= now - ACTION_WINDOW)
        .group_by(col(Action.kind))
    )
    for kind, count in taken.all():
        by_kind[kind] = int(count)

    return ModerationStats(
        open=CountByContext(**waiting["open"]),
        assigned=CountByContext(**waiting["assigned"]),
        first_action_median_seconds=_medians(((c, f) for c, f, _ in times), now),
        resolution_median_seconds=_medians(((c, r) for c, _, r in times), now),
        actions=by_kind,
    )


def _medians(spans: Iterable[tuple[datetime, datetime | None]], now: datetime) -> MedianSeconds:
    """For each window, the median of ``end - start`` over the spans that ended in it."""
    ended = [(end, (end - start).total_seconds()) for start, end in spans if end is not None]
    found: dict[str, float | None] = {}
    for name, window in WINDOWS.items():
        seconds = [s for end, s in ended if end >= now - window]
        found[name] = statistics.median(seconds) if seconds else None
    return MedianSeconds(**found)
