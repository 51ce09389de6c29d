"""What moderation does with other services' events: it keeps replicas of identity's personas
and staff roles and of groups' groups and moderating roles, and turns content that feed held
for the terms into system reports.

Each consumed event is parsed into the model below that its handler declares; an event that
does not match is dead-lettered by the receiver (``kit.outbox``) and never reaches a handler.
Handlers are idempotent: the receiver applies an event once, and each replica keeps the latest
state by the event's time, so an older event delivered late changes nothing.

The events moderation publishes are written by ``actions`` (``report_event``, the action and
undo events, ``audit_event``); their shapes are in decision 0032, "Events".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.contexts import Context
from domain.events import PersonaChanged, PersonaErased, StaffUpdated, erase_persona, keep_persona, keep_staff
from kit.db import upsert
from kit.outbox import Consumer, EventHandler, IdEvent, handler_outbox
from kit.timeutil import as_utc
from services.moderation import reporting
from services.moderation.lookup import Item
from services.moderation.models import (
    GroupReplica,
    GroupRoleReplica,
    Notice,
    PersonaReplica,
    Report,
    StaffReplica,
)
from services.moderation.staff import GROUP_ROLES, STAFF_ROLES


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GroupChanged(_Event):
    """``group.created``, ``.updated``, ``.archived``, ``.restored`` (groups)."""

    context: Context
    visibility: str = Field(max_length=10)
    moderation: Literal["hidden", "removed"] | None = None


class GroupDeleted(_Event):
    """``group.deleted`` (groups): the subject names the group."""


class MembershipChanged(_Event):
    """``membership.added``, ``.updated``, ``.removed`` (groups); the subject is the group."""

    persona_id: uuid.UUID
    group_id: uuid.UUID | None = None
    role: str | None = Field(default=None, max_length=20)


class ContentHeld(_Event):
    """``internal.content.held`` (feed): a post or comment saved held for the terms."""

    context: Context
    item_type: Literal["post", "comment"]
    item_id: uuid.UUID
    post_id: uuid.UUID
    author_id: uuid.UUID
    group_id: uuid.UUID | None = None
    body: str = Field(max_length=100_000)
    links: list[str] = Field(default_factory=list, max_length=1000)
    term_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    created_at: datetime


async def on_persona_changed(session: AsyncSession, event: IdEvent[PersonaChanged]) -> None:
    await keep_persona(session, PersonaReplica, event)


async def on_persona_erased(session: AsyncSession, event: IdEvent[PersonaErased]) -> None:
    """Keeps a tombstone without the name, takes the persona off the reports it filed and
    deletes its notices and roles. The evidence and actions stay, as the organisation's
    record, for their retention (decision 0032, "Retention, records and stats")."""
    persona_id = event.subject
    await session.execute(
        update(Report)
        .where(col(Report.reporter_id) == persona_id)
        .values(reporter_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(delete(Notice).where(col(Notice.persona_id) == persona_id))
    await session.execute(delete(StaffReplica).where(col(StaffReplica.persona_id) == persona_id))
    await session.execute(delete(GroupRoleReplica).where(col(GroupRoleReplica.persona_id) == persona_id))
    await erase_persona(session, PersonaReplica, event)


async def on_staff_updated(session: AsyncSession, event: IdEvent[StaffUpdated]) -> None:
    """The replica holds the persona's moderation roles (decision 0032)."""
    await keep_staff(session, StaffReplica, event, STAFF_ROLES)


async def on_group_changed(session: AsyncSession, event: IdEvent[GroupChanged]) -> None:
    data = event.data
    at = as_utc(event.time)
    current = await session.get(GroupReplica, event.subject)
    if current is not None and as_utc(current.updated_at) > at:
        return
    values = {
        "id": event.subject,
        "context": data.context,
        "visibility": data.visibility,
        "moderation": data.moderation,
        "updated_at": at,
    }
    await upsert(session, GroupReplica, values, ["id"])


async def on_group_deleted(session: AsyncSession, event: IdEvent[GroupDeleted]) -> None:
    await session.execute(delete(GroupRoleReplica).where(col(GroupRoleReplica.group_id) == event.subject))
    await session.execute(delete(GroupReplica).where(col(GroupReplica.id) == event.subject))


async def on_membership_changed(session: AsyncSession, event: IdEvent[MembershipChanged]) -> None:
    """Only owners and moderators are kept: a member without either role, or one who left,
    has no row. A group's events arrive in their order (one subject, the group)."""
    data = event.data
    group_id = data.group_id or event.subject
    key = (col(GroupRoleReplica.group_id) == group_id, col(GroupRoleReplica.persona_id) == data.persona_id)
    if event.type == "membership.removed" or data.role not in GROUP_ROLES:
        await session.execute(delete(GroupRoleReplica).where(*key))
        return
    values = {
        "group_id": group_id,
        "persona_id": data.persona_id,
        "role": data.role,
        "updated_at": as_utc(event.time),
    }
    await upsert(session, GroupRoleReplica, values, ["group_id", "persona_id"])


async def on_content_held(session: AsyncSession, event: IdEvent[ContentHeld]) -> None:
    data = event.data
    item = Item(
        item_type=data.item_type,
        item_id=data.item_id,
        context=data.context,
        author_id=data.author_id,
        post_id=data.post_id,
        group_id=data.group_id,
        body=data.body,
        links=tuple(data.links),
        created_at=data.created_at,
    )
    await reporting.file_held(session, handler_outbox(session), item, data.term_ids)


persona_changed = Consumer(IdEvent[PersonaChanged], on_persona_changed)
group_changed = Consumer(IdEvent[GroupChanged], on_group_changed)
membership_changed = Consumer(IdEvent[MembershipChanged], on_membership_changed)

handlers: dict[str, EventHandler] = {
    "persona.created": persona_changed,
    "persona.updated": persona_changed,
    "persona.deactivated": persona_changed,
    "persona.erased": Consumer(IdEvent[PersonaErased], on_persona_erased),
    "internal.staff.updated": Consumer(IdEvent[StaffUpdated], on_staff_updated),
    "group.created": group_changed,
    "group.updated": group_changed,
    "group.archived": group_changed,
    "group.restored": group_changed,
    "group.deleted": Consumer(IdEvent[GroupDeleted], on_group_deleted),
    "membership.added": membership_changed,
    "membership.updated": membership_changed,
    "membership.removed": membership_changed,
    "internal.content.held": Consumer(IdEvent[ContentHeld], on_content_held),
}
