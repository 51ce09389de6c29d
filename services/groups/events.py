"""What groups does with other services' events: keep its persona replica, and drop the
memberships of personas that are gone."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.db import upsert
from kit.outbox import EventHandler, EventIn
from services.groups.models import Membership, PersonaReplica


async def on_persona_changed(session: AsyncSession, event: EventIn) -> None:
    data = event.data
    persona_id = uuid.UUID(event.subject)
    updated_at = datetime.fromisoformat(data["updated_at"])
    current = await session.get(PersonaReplica, persona_id)
    if current is not None and current.updated_at >= updated_at:
        return  # an older event delivered late
    values = {
        "id": persona_id,
        "context": data["context"],
        "handle": data["handle"],
        "display_name": data["display_name"],
        "status": data["status"],
        "updated_at": updated_at,
    }
    await upsert(session, PersonaReplica, values, ["id"])


async def on_persona_erased(session: AsyncSession, event: EventIn) -> None:
    persona_id = uuid.UUID(event.subject)
    await session.execute(delete(Membership).where(col(Membership.persona_id) == persona_id))
    await session.execute(delete(PersonaReplica).where(col(PersonaReplica.id) == persona_id))


handlers: dict[str, EventHandler] = {
    "persona.created": on_persona_changed,
    "persona.updated": on_persona_changed,
    "persona.erased": on_persona_erased,
}
