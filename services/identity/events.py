"""What identity does with the events it receives: every event, its own included, fans out to
the integrators' webhooks (webhooks.py); moderation's suspension of a persona and its lifting
set and clear the persona's hold; moderation's account of each action it takes becomes an
audit entry (decision 0032); records' disposal of identity's audit log and finished webhook
deliveries is recorded for the worker that carries it out (decision 0033); media's word that an
avatar's file changed is shown on the persona (decision 0036).

Each consumed event is parsed into the model below that its handler declares; an event that
does not match is dead-lettered by the receiver (``kit.outbox``) and never reaches a handler.
Handlers are idempotent: the receiver applies an event once, a hold ignores an event older
than the last one applied to the persona, and a disposal asked again deletes nothing more.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from domain.contexts import Context
from domain.media import MediaAttachment
from kit.outbox import Consumer, Event, EventHandler, EventIn, IdEvent, handler_outbox
from kit.timeutil import as_utc
from services.identity import audit, avatars, personas, records, webhooks


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PersonaModerated(_Event):
    """``moderation.persona.suspended`` and ``moderation.persona.reinstated`` (moderation); the
    subject is the persona."""

    context: Context
    target_type: Literal["persona"]
    report_id: uuid.UUID | None = None
    action_id: uuid.UUID | None = None
    until: datetime | None = None


class ModerationAudit(_Event):
    """``internal.moderation.audit`` (moderation): one action, who took it (a staff moderator's
    professional persona, or a group's role) and why. It names no account."""

    context: Context
    report_id: uuid.UUID | None = None
    action_id: uuid.UUID
    kind: str = Field(min_length=1, max_length=30)
    reason: str | None = Field(default=None, max_length=2000)
    target_type: str = Field(min_length=1, max_length=20)
    target_id: uuid.UUID
    subject_id: uuid.UUID | None = None
    moderator_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None


class RecordsDispose(_Event):
    """``internal.records.dispose`` (records; the subject is the disposition run). Identity
    holds two classes of operational records, disposed of by age: ``{"class": "audit_log" or
    "webhook_deliveries", "before": time}``. Every other shape (content, for feed; another
    owner's class) is ignored here."""

    record_class: str | None = Field(default=None, alias="class")
    before: datetime | None = None


class MediaUpdated(_Event):
    """``internal.media.updated`` (media; the subject is the media): an attached file as media
    now describes it. Identity keeps the ``avatar`` ones; other owners' are ignored here."""

    owner_kind: str = Field(max_length=20)
    owner_id: uuid.UUID
    media: MediaAttachment


async def on_persona_suspended(session: AsyncSession, event: IdEvent[PersonaModerated]) -> None:
    await personas.set_hold(
        session, handler_outbox(session), event.subject, event.data.context, held=True, at=event.time
    )


async def on_persona_reinstated(session: AsyncSession, event: IdEvent[PersonaModerated]) -> None:
    await personas.set_hold(
        session, handler_outbox(session), event.subject, event.data.context, held=False, at=event.time
    )


async def on_moderation_audit(session: AsyncSession, event: Event[ModerationAudit]) -> None:
    data = event.data
    await audit.record_moderation(
        session,
        moderator_id=data.moderator_id,
        group_id=data.group_id,
        action=f"moderation.{data.kind}",
        reason=data.reason,
        context=data.context,
        report_id=None if data.report_id is None else str(data.report_id),
        action_id=str(data.action_id),
        target_type=data.target_type,
        target_id=str(data.target_id),
        subject_id=None if data.subject_id is None else str(data.subject_id),
    )


async def on_records_dispose(session: AsyncSession, event: Event[RecordsDispose]) -> None:
    data = event.data
    if data.record_class is None or data.before is None:
        return
    # never later than the run that asked: nothing written since can be in its scope
    before = min(as_utc(data.before), as_utc(event.time))
    await records.request_disposal(session, data.record_class, before)


async def on_media_updated(session: AsyncSession, event: Event[MediaUpdated]) -> None:
    data = event.data
    if data.owner_kind == avatars.OWNER_KIND:
        await avatars.media_updated(session, data.owner_id, data.media)


handlers: dict[str, EventHandler] = {
    "moderation.persona.suspended": Consumer(IdEvent[PersonaModerated], on_persona_suspended),
    "moderation.persona.reinstated": Consumer(IdEvent[PersonaModerated], on_persona_reinstated),
    "internal.moderation.audit": Consumer(Event[ModerationAudit], on_moderation_audit),
    "internal.records.dispose": Consumer(Event[RecordsDispose], on_records_dispose),
    "internal.media.updated": Consumer(Event[MediaUpdated], on_media_updated),
    # After each type's own handler: every event, for the webhooks that want it. Idempotent:
    # its deliveries are keyed by endpoint and event id (webhooks.enqueue).
    "*": Consumer(EventIn, webhooks.enqueue, idempotent=True),
}
