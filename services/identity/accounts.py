"""Account lifecycle: suspension, deactivation and reactivation, and what each tells the
other services without ever linking the two personas of one account."""

from __future__ import annotations

import random

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.identity import personas
from services.identity.models import Account, Persona, RefreshToken
from services.identity.settings import IdentitySettings


async def set_status(
    session: AsyncSession, outbox: Outbox, settings: IdentitySettings, account: Account, status: str
) -> None:
    """Applies ``status`` to the account and both personas; revokes every refresh token when
    the account stops being active. The personal persona's event leaves after a random delay
    so that no other service can pair it with the professional one's."""
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
        persona.status = status
        personas.touch(persona)
        event = "persona.deactivated" if status == "deactivated" else "persona.updated"
        delay = 0 if persona.kind == "professional" else random.uniform(low, high)  # noqa: S311 - not a secret
        await outbox.publish(
            session, event, str(persona.id), personas.event_data(persona), delay_seconds=delay
        )
