"""Identity's persona events as the services that keep a persona replica read them (groups,
moderation): the one description of their data and of how a replica applies them, so that the
replicas cannot drift apart. Feed reads the same events more leniently
(``services/feed/events.py``), as it also keeps ``discoverable``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import upsert
from kit.outbox import IdEvent
from kit.timeutil import as_utc


class PersonaChanged(BaseModel):
    """``persona.created``, ``persona.updated``, ``persona.deactivated`` (identity)."""

    model_config = ConfigDict(extra="ignore")

    context: str = Field(max_length=20)
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    status: str = Field(max_length=20)


class PersonaErased(BaseModel):
    """``persona.erased`` (identity)."""

    model_config = ConfigDict(extra="ignore")

    context: str = ""


async def keep_persona(session: AsyncSession, replica: Any, event: IdEvent[PersonaChanged]) -> bool:
    """Writes the persona ``event`` describes into the service's ``replica`` table. A persona's
    events are ordered by their own time, since the profile's ``updated_at`` does not move when
    the account's status does (docs/boundary.md). Returns False, writing nothing, for an event
    older than the row (delivered late) or a persona already erased."""
    updated_at = as_utc(event.time)
    current = await session.get(replica, event.subject)
    if current is not None and (as_utc(current.updated_at) > updated_at or current.status == "erased"):
        return False
    data = event.data
    values = {
        "id": event.subject,
        "context": data.context,
        "handle": data.handle,
        "display_name": data.display_name,
        "status": data.status,
        "updated_at": updated_at,
    }
    await upsert(session, replica, values, ["id"])
    return True
