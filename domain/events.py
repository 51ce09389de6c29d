"""Identity's persona events as the services that keep a persona replica read them (groups,
moderation, records), and its staff event as the services that keep a staff replica read it
(moderation, records): the one description of their data and of how a replica applies them, so
that the replicas cannot drift apart. Feed reads the same events more leniently
(``services/feed/events.py``), as it also keeps ``discoverable``."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete
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


class StaffUpdated(BaseModel):
    """``internal.staff.updated`` (identity): a professional persona's roles, all of them."""

    model_config = ConfigDict(extra="ignore")

    persona_id: uuid.UUID
    context: Literal["professional", "personal"]
    roles: list[str] = Field(max_length=50)


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


async def erase_persona(session: AsyncSession, replica: Any, event: IdEvent[PersonaErased]) -> None:
    """Keeps the erased persona in ``replica`` as a tombstone without its name, so that a late
    event cannot bring it back (``keep_persona`` leaves an erased row alone)."""
    values = {
        "id": event.subject,
        "context": event.data.context[:20],
        "handle": "",
        "display_name": "",
        "status": "erased",
        "updated_at": as_utc(event.time),
    }
    await upsert(session, replica, values, ["id"])


async def keep_staff(
    session: AsyncSession, replica: Any, event: IdEvent[StaffUpdated], roles: Collection[str]
) -> None:
    """Writes into the service's staff ``replica`` (``persona_id``, ``roles``, ``updated_at``)
    those of the persona's roles the service acts on (``roles``); a persona left with none has
    no row. Roles act through the professional persona only: any other is ignored, and so is an
    event older than the row."""
    data = event.data
    if data.context != "professional" or data.persona_id != event.subject:
        return
    at = as_utc(event.time)
    current = await session.get(replica, data.persona_id)
    if current is not None and as_utc(current.updated_at) > at:
        return
    held = sorted(set(data.roles) & set(roles))
    if not held:
        await session.execute(delete(replica).where(replica.persona_id == data.persona_id))
        return
    await upsert(
        session, replica, {"persona_id": data.persona_id, "roles": held, "updated_at": at}, ["persona_id"]
    )
