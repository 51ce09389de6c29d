"""Lifting limits and suspensions when their time is up (decision 0032, "Actions").

A ``limit`` always has an ``until``, a ``suspend_persona`` may; at that time the action is
lifted: ``actions.lift`` marks it and publishes its undo (``moderation.persona.unlimited`` or
``reinstated``), which feed or identity apply like any other event. The worker claims due
actions ``FOR UPDATE SKIP LOCKED``: two replicas of the service lift each action once, and an
action an upheld appeal is reverting at that moment is left to the revert (which holds its row)
and is no longer due once it commits.

Two limits (or two suspensions) of one persona can overlap, from two reports. The one that ends
while the other still holds is marked lifted without its undo: the persona stays limited until
the last one ends, rather than being let go by the first.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.db import Database
from kit.housekeeping import Periodic
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.moderation import actions
from services.moderation.models import Action

EXPIRING = ("limit", "suspend_persona")
INTERVAL_SECONDS = 30.0
BATCH = 100


class Expiry(Periodic):
    """A worker (``ServiceSpec.workers``): every ``interval`` seconds, lifts what is due."""

    def __init__(self, database: Database, outbox: Outbox, *, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__(interval)
        self.database = database
        self.outbox = outbox

    async def tick(self) -> int:
        return await expire_due(self.database, self.outbox)


def worker(app: FastAPI) -> Expiry:
    """The expiry worker of a moderation app, for ``ServiceSpec.workers``."""
    expiry = Expiry(app.state.database, app.state.outbox)
    app.state.expiry = expiry
    return expiry


async def expire_due(
    database: Database, outbox: Outbox, now: datetime | None = None, *, batch: int = BATCH
) -> int:
    """Lifts every limit and suspension due at ``now`` (not lifted, not reverted), ``batch``
    at a time, each batch in one transaction; returns how many were lifted."""
    now = now or utcnow()
    lifted = 0
    while True:
        async with database.sessionmaker() as session:
            due = (
                await session.scalars(
                    select(Action)
                    .where(
                        col(Action.kind).in_(EXPIRING),
                        col(Action.until) <= now,
                        col(Action.lifted_at).is_(None),
                        col(Action.reverted_at).is_(None),
                    )
                    .order_by(col(Action.until), col(Action.id))
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for action in due:
                if await _outlasted(session, action, now):
                    await _mark_lifted(session, action)
                else:
                    await actions.lift(session, outbox, action)
            await session.commit()
        lifted += len(due)
        if len(due) < batch:
            return lifted


async def _outlasted(session: AsyncSession, action: Action, now: datetime) -> bool:
    """Whether another action of the same kind still holds the same persona after ``now``."""
    other = exists().where(
        col(Action.id) != action.id,
        col(Action.kind) == action.kind,
        col(Action.target_type) == action.target_type,
        col(Action.target_id) == action.target_id,
        col(Action.lifted_at).is_(None),
        col(Action.reverted_at).is_(None),
        or_(col(Action.until).is_(None), col(Action.until) > now),
    )
    return bool(await session.scalar(select(other)))


async def _mark_lifted(session: AsyncSession, action: Action) -> None:
    """Lifted, with no undo published: another action keeps the persona where it is."""
    await session.execute(
        update(Action)
        .where(
            col(Action.id) == action.id, col(Action.lifted_at).is_(None), col(Action.reverted_at).is_(None)
        )
        .values(lifted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
