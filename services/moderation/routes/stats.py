"""Moderation's HTTP routes: the organisation's moderation figures (services/moderation/stats.py
says how each is counted)."""

from __future__ import annotations

from fastapi import APIRouter

from kit.timeutil import utcnow
from services.moderation import stats
from services.moderation.deps import SessionDep, Staff
from services.moderation.stats import ModerationStats

router = APIRouter(tags=["moderation"])


@router.get(
    "/api/v1/moderation/stats",
    summary="Moderation figures: open reports, median times, actions (staff)",
    responses={
        403: {
            "description": "`not-a-moderator`: not a moderator or administrator acting through a "
            "professional persona that still holds the role; `notices-only`: a `notices` token; "
            "`forbidden`: a client's token"
        }
    },
)
async def get_stats(session: SessionDep, _staff: Staff) -> ModerationStats:
    """Reports open and assigned, by context; the median time from filing to first action and
    to resolution over the last 7 and 30 days (null when none); actions by kind over 30 days.
    Counts only: no persona is named."""
    return await stats.compute(session, utcnow())
