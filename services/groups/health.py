"""Group health: whether a group still lives around its purpose, computed from the feed's
activity events (docs/groups-health.md says how each figure is computed and why)."""

from __future__ import annotations

import math
import statistics
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, exists, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from kit.housekeeping import Retention
from kit.timeutil import utcnow
from services.groups.models import Activity, Group, Membership
from services.groups.schemas import GroupHealth, WeekActivity

DAY = timedelta(days=1)
ACTIVE_WINDOW = 30 * DAY
WEEKS = 8
HISTORY_WINDOW = WEEKS * 7 * DAY
NEWCOMER_FROM, NEWCOMER_TO = 60 * DAY, 30 * DAY
DORMANT_AFTER = 30 * DAY
THRIVING_MIN_ACTIVE = 3
THRIVING_MIN_SHARE_PERCENT = 10
THRIVING_MIN_CONTRIBUTIONS = 4
TOP_SHARE = 0.10
CONTRIBUTIONS = ("post", "comment")


# The longest look back of any figure is the newcomers' (60 days); history is kept for 90,
# and each group's latest item however old (days since the last activity needs it).
HISTORY_KEPT = 90 * DAY


def history_retention() -> Retention:
    """Activity older than ``HISTORY_KEPT``, except each group's latest item. Records'
    disposal of the ``group_health`` class (``records.dispose_of_history``) applies this
    same rule with its own cut-off."""
    newer = aliased(Activity)
    has_newer = exists().where(
        col(newer.group_id) == col(Activity.group_id), col(newer.occurred_at) > col(Activity.occurred_at)
    )
    return Retention(
        "group activity history",
        Activity.__table__,  # type: ignore[attr-defined]
        "occurred_at",
        HISTORY_KEPT,
        condition=has_newer,
    )


def now() -> datetime:
    """The health clock; one place to read it, so tests can fix it."""
    return utcnow()


def _active_members(at: datetime) -> Any:
    return (
        select(func.count(distinct(col(Activity.actor_id))))
        .where(
            col(Activity.group_id) == Group.id,
            col(Activity.occurred_at) > at - ACTIVE_WINDOW,
            exists().where(
                col(Membership.group_id) == Group.id, col(Membership.persona_id) == Activity.actor_id
            ),
        )
        .scalar_subquery()
    )


def status_expression(at: datetime) -> ColumnElement[str]:
    """The status rule as SQL over ``Group``, so the list filter and the health figures use
    one definition: dormant when nothing happened for 30 days (a new group gets 30 days of
    grace); thriving with at least 3 active members who are at least 10 % of the members,
    and at least 4 posts and comments in 30 days; quiet otherwise."""
    since = at - ACTIVE_WINDOW
    last = select(func.max(Activity.occurred_at)).where(col(Activity.group_id) == Group.id).scalar_subquery()
    active = _active_members(at)
    contributions = (
        select(func.count())
        .select_from(Activity)
        .where(
            col(Activity.group_id) == Group.id,
            col(Activity.kind).in_(CONTRIBUTIONS),
            col(Activity.occurred_at) > since,
        )
        .scalar_subquery()
    )
    return case(
        (func.coalesce(last, Group.created_at) <= at - DORMANT_AFTER, "dormant"),
        (
            and_(
                active >= THRIVING_MIN_ACTIVE,
                active * 100 >= col(Group.member_count) * THRIVING_MIN_SHARE_PERCENT,
                contributions >= THRIVING_MIN_CONTRIBUTIONS,
            ),
            "thriving",
        ),
        else_="quiet",
    )


def _share(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


async def compute(session: AsyncSession, group: Group, at: datetime) -> GroupHealth:
    status, active, last = (
        await session.execute(
            select(
                status_expression(at),
                _active_members(at),
                select(func.max(Activity.occurred_at))
                .where(col(Activity.group_id) == Group.id)
                .scalar_subquery(),
            ).where(col(Group.id) == group.id)
        )
    ).one()
    rows = (
        await session.execute(
            select(Activity.kind, Activity.actor_id, Activity.post_id, Activity.occurred_at).where(
                col(Activity.group_id) == group.id,
                col(Activity.occurred_at) > at - NEWCOMER_FROM,
                col(Activity.occurred_at) <= at,
            )
        )
    ).all()
    newcomers = (
        await session.execute(
            select(Membership.persona_id, Membership.joined_at).where(
                col(Membership.group_id) == group.id,
                col(Membership.joined_at) > at - NEWCOMER_FROM,
                col(Membership.joined_at) <= at - NEWCOMER_TO,
            )
        )
    ).all()

    weekly = []
    for week in range(WEEKS):
        start = at - (WEEKS - week) * 7 * DAY
        end = start + 7 * DAY
        inside = [r for r in rows if start < r.occurred_at <= end]
        weekly.append(
            WeekActivity(
                start=start,
                end=end,
                posts=sum(r.kind == "post" for r in inside),
                comments=sum(r.kind == "comment" for r in inside),
            )
        )

    recent = [r for r in rows if r.occurred_at > at - HISTORY_WINDOW]
    posts = {r.post_id: r for r in recent if r.kind == "post"}
    first_reply: dict[uuid.UUID, datetime] = {}
    for r in recent:
        post = posts.get(r.post_id)
        is_reply = r.kind == "comment" and post is not None and r.actor_id != post.actor_id
        if is_reply and (r.post_id not in first_reply or r.occurred_at < first_reply[r.post_id]):
            first_reply[r.post_id] = r.occurred_at
    delays = [max(0.0, (first_reply[p] - posts[p].occurred_at).total_seconds()) for p in first_reply]

    by_actor = Counter(r.actor_id for r in recent)
    total = sum(by_actor.values())
    top = max(1, math.ceil(group.member_count * TOP_SHARE))
    concentration = round(sum(n for _, n in by_actor.most_common(top)) / total, 3) if total else None

    retained = sum(
        any(r.actor_id == persona_id and joined_at <= r.occurred_at < joined_at + ACTIVE_WINDOW for r in rows)
        for persona_id, joined_at in newcomers
    )
    today = at.date()
    return GroupHealth(
        group_id=group.id,
        computed_at=at,
        status=status,
        member_count=group.member_count,
        active_members=int(active or 0),
        active_share=_share(int(active or 0), group.member_count),
        weekly=weekly,
        median_first_reply_seconds=statistics.median(delays) if delays else None,
        unanswered_posts=len(posts) - len(first_reply),
        contributor_concentration=concentration,
        newcomers=len(newcomers),
        newcomers_retained=retained,
        newcomer_retention=round(retained / len(newcomers), 3) if newcomers else None,
        last_activity_at=last,
        days_since_last_activity=None if last is None else max(0, (at - last) // DAY),
        review_at=group.review_at,
        review_due=group.review_at is not None and group.review_at <= today,
    )
