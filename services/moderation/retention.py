"""How long moderation keeps its records (decision 0032, "Retention, records and stats"; the
mechanism is decision 0027's).

A resolved report's evidence and actions are the organisation's record: kept ``record_days``
after the resolution, whether or not the persona concerned has been erased since. The evidence
of a report dismissed with no action goes after ``dismissed_days``. Each rule ages its rows by
the report's ``resolved_at``, which a reopened report loses until it is resolved again.

Rows go in the order of their references: notices, then actions (a notice refers to its
action), then evidence, then reports no action refers to any more. A limit or suspension still
in force (neither lifted nor reverted, such as a suspension without end) is kept with its
notices and its report's evidence, whatever their age: they are what the persona's state rests
on, and what an administrator reviews before lifting it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, not_, or_, select

from kit.db import UTCDateTime
from kit.housekeeping import Retention
from kit.timeutil import utcnow
from services.moderation.models import Action, Evidence, Notice, Report
from services.moderation.settings import ModerationSettings

IN_FORCE_KINDS = ("limit", "suspend_persona")


def rules(settings: ModerationSettings) -> list[Retention]:
    """``ServiceSpec.retention`` for moderation."""
    record = timedelta(days=settings.record_days)
    dismissed = timedelta(days=settings.dismissed_days)
    report, action, notice, evidence = (
        Report.__table__,  # type: ignore[attr-defined]
        Action.__table__,  # type: ignore[attr-defined]
        Notice.__table__,  # type: ignore[attr-defined]
        Evidence.__table__,  # type: ignore[attr-defined]
    )

    def resolved_before(keep: timedelta, name: str, *also: Any) -> Any:
        """The report is resolved, ``keep`` ago or more (the cut-off read at each run)."""
        return and_(
            report.c.status == "resolved",
            report.c.resolved_at < _cutoff(name, keep),
            *also,
        )

    def recorded(column: Any) -> Any:
        return exists().where(report.c.id == column, resolved_before(record, "moderation_record_cutoff"))

    def settled(table: Any) -> Any:
        """A row of ``table`` that is no limit or suspension still in force."""
        return or_(
            table.c.kind.not_in(IN_FORCE_KINDS),
            table.c.lifted_at.is_not(None),
            table.c.reverted_at.is_not(None),
        )

    def holding(report_id: Any) -> Any:
        """The report has an action still in force."""
        return exists().where(action.c.report_id == report_id, not_(settled(action)))

    old_action = and_(recorded(action.c.report_id), settled(action))
    return [
        Retention(
            "moderation notices",
            notice,
            "created_at",
            record,
            condition=exists().where(action.c.id == notice.c.action_id, old_action),
        ),
        Retention(
            "moderation actions",
            action,
            "created_at",
            record,
            condition=and_(old_action, not_(exists().where(notice.c.action_id == action.c.id))),
        ),
        Retention(
            "moderation evidence",
            evidence,
            "captured_at",
            min(record, dismissed),  # captured at filing: before the resolution either ages from
            condition=or_(
                and_(recorded(evidence.c.report_id), not_(holding(evidence.c.report_id))),
                exists().where(
                    report.c.id == evidence.c.report_id,
                    resolved_before(dismissed, "moderation_dismissed_cutoff", report.c.action == "none"),
                ),
            ),
        ),
        Retention(
            "moderation reports",
            report,
            "resolved_at",
            record,
            condition=and_(
                report.c.status == "resolved",
                not_(exists(select(action.c.id).where(action.c.report_id == report.c.id))),
            ),
        ),
    ]


def _cutoff(name: str, keep: timedelta) -> Any:
    """``now - keep``, computed when each statement runs rather than when the rule was made."""

    def value() -> datetime:
        return utcnow() - keep

    return bindparam(name, callable_=value, type_=UTCDateTime())
