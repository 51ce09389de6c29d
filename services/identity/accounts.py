"""Account lifecycle: suspension, deactivation and reactivation, and what each does to the two
personas without ever letting an observer pair them.

An account-level change shows in one context at once and in the other only later: the
professional persona changes with the account; the personal persona's change is written down as
pending, with a random time of its own, and ``PendingStatuses`` applies it then, in a
transaction of its own, so its event gets that moment's id and time (docs/boundary.md). Until
then the personal persona looks untouched to everyone else, while identity already refuses the
account's sign-ins and tokens (which only the owner can observe).

What a persona shows is ``personas.effective_status``: a persona held by moderation stays
suspended whatever its account does, so a change that does not move what it shows is not
announced at all.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database
from kit.housekeeping import Periodic
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.identity import personas
from services.identity.models import Account, Persona, RefreshToken
from services.identity.settings import IdentitySettings

log = logging.getLogger(__name__)


def _event_type(status: str) -> str:
    return "persona.deactivated" if status == "deactivated" else "persona.updated"


async def set_status(
    session: AsyncSession, outbox: Outbox, settings: IdentitySettings, account: Account, status: str
) -> None:
    """Applies ``status`` to the account and its professional persona, and schedules it for the
    personal persona after a random delay; revokes every refresh token when the account stops
    being active. No persona's ``updated_at`` moves: that is the profile's own edit time, and a
    moderation hold stays as it is."""
    account.status = status
    account.updated_at = utcnow()
    if status != "active":
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.account_id == account.id, RefreshToken.revoked_at.is_(None))  # type: ignore[arg-type, union-attr]
            .values(revoked_at=utcnow())
        )
    rows = (await session.scalars(select(Persona).where(Persona.account_id == account.id))).all()  # type: ignore[arg-type]
    low, high = settings.unlink_delay_seconds
    for persona in rows:
        if persona.kind == personas.PROFESSIONAL:
            await _apply(session, outbox, persona, status)
        elif persona.status == status:
            persona.pending_status = persona.pending_status_at = None  # a change undone before it showed
        else:
            persona.pending_status = status
            persona.pending_status_at = utcnow() + timedelta(seconds=random.uniform(low, high))  # noqa: S311 - not a secret


async def _apply(session: AsyncSession, outbox: Outbox, persona: Persona, status: str) -> bool:
    """Gives the persona its account's ``status`` and announces the persona when what it shows
    changes; returns whether it did."""
    before = personas.effective_status(persona)
    persona.status = status
    shown = personas.effective_status(persona)
    if shown == before:
        return False
    await outbox.publish(session, _event_type(shown), str(persona.id), personas.event_data(persona))
    return True


class PendingStatuses(Periodic):
    """A worker: applies the personal personas' pending statuses whose time has come, and
    announces them as they happen."""

    def __init__(self, database: Database, outbox: Outbox, *, interval: float = 15, batch: int = 100) -> None:
        super().__init__(interval)
        self.database = database
        self.outbox = outbox
        self.batch = batch

    async def tick(self) -> int:
        return await self.apply_due()

    async def apply_due(self, now: datetime | None = None) -> int:
        """Applies every change due at ``now``; returns how many were applied."""
        applied = 0
        while True:
            async with self.database.sessionmaker() as session:
                due = (
                    await session.scalars(
                        select(Persona)
                        .where(Persona.pending_status_at <= (now or utcnow()))  # type: ignore[operator, arg-type]
                        .order_by(Persona.pending_status_at)  # type: ignore[arg-type]
                        .limit(self.batch)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                for persona in due:
                    status = persona.pending_status
                    persona.pending_status = persona.pending_status_at = None
                    if status is not None and await _apply(session, self.outbox, persona, status):
                        applied += 1
                await session.commit()
            if len(due) < self.batch:
                return applied
