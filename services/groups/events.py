"""What groups does with other services' events: keep its persona replica, drop the
memberships of personas that are gone (with ownership succession), record the feed's
activity in groups, which group health is computed from, apply moderation's decisions on
groups (services/groups/moderation.py), dispose of that activity history when records'
retention says so (services/groups/records.py), and show what media says of a group's image
(services/groups/images.py).

Each consumed event is parsed into the model below that its handler declares; an event that
does not match is dead-lettered by the receiver (``kit.outbox``) and never reaches a handler.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.contexts import Context
from domain.events import PersonaChanged, PersonaErased, keep_persona
from domain.media import MediaAttachment
from kit.db import upsert
from kit.ids import new_id
from kit.outbox import Consumer, Event, EventHandler, IdEvent, delivery_scope, handler_outbox
from services.groups import images, membership, moderation, records
from services.groups.models import Activity, Group, PersonaReplica

GONE = ("deactivated", "erased")


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PostCreated(_Event):
    id: uuid.UUID
    author_id: uuid.UUID
    context: Context
    group_id: uuid.UUID | None = None
    created_at: datetime


class PostDeleted(_Event):
    id: uuid.UUID
    group_id: uuid.UUID | None = None


class CommentCreated(_Event):
    id: uuid.UUID
    post_id: uuid.UUID
    author_id: uuid.UUID
    context: Context
    group_id: uuid.UUID | None = None
    post_author_id: uuid.UUID | None = None
    post_created_at: datetime | None = None
    created_at: datetime


class CommentDeleted(_Event):
    id: uuid.UUID
    group_id: uuid.UUID | None = None


class ReactionAdded(_Event):
    post_id: uuid.UUID
    persona_id: uuid.UUID
    kind: str
    context: Context
    group_id: uuid.UUID | None = None
    created_at: datetime


class ReactionRemoved(_Event):
    post_id: uuid.UUID
    persona_id: uuid.UUID
    kind: str
    group_id: uuid.UUID | None = None


class GroupModerated(_Event):
    """``moderation.group.hidden``, ``.removed``, ``.restored`` (moderation). The data every
    moderation event carries; groups needs the group and its context only."""

    context: Context
    report_id: uuid.UUID
    action_id: uuid.UUID
    target_type: Literal["group"]
    target_id: uuid.UUID
    subject_id: uuid.UUID | None = None
    until: datetime | None = None


class RecordsDisposal(_Event):
    """``internal.records.dispose`` (records, decision 0033). Its data has one of several
    shapes: ``kind`` names content that feed destroys, ``class`` an operational class whose
    owner deletes the rows created before ``before``. Groups owns the class ``group_health``
    alone; every other shape is read no further and ignored."""

    record_class: str | None = Field(default=None, alias="class")
    before: datetime | None = None

    @model_validator(mode="after")
    def _cut_off(self) -> RecordsDisposal:
        if self.record_class == records.GROUP_HEALTH and self.before is None:
            raise ValueError("a disposal of group_health names its cut-off, before")
        return self


class MediaUpdated(_Event):
    """``internal.media.updated`` (media; the subject is the media): an attached file as media
    now describes it. Groups keeps the ``group_image`` ones; other owners' are ignored here."""

    owner_kind: str = Field(max_length=20)
    owner_id: uuid.UUID
    media: MediaAttachment


async def _in_group(session: AsyncSession, group_id: uuid.UUID | None, context: str) -> bool:
    """Whether the content is in a group of its context. A group's context never changes, so
    each group is read once for all the events of a delivery (``delivery_scope``; decision
    0050); a group deleted meanwhile fails its activity's insert, and the delivery is retried."""
    if group_id is None:
        return False
    contexts: dict[uuid.UUID, str | None] = delivery_scope(session).setdefault("group_contexts", {})
    if group_id not in contexts:
        group = await session.get(Group, group_id)
        contexts[group_id] = group.context if group is not None else None
    return contexts[group_id] == context


async def _record(session: AsyncSession, values: dict[str, object]) -> None:
    await upsert(session, Activity, {"id": new_id(), **values}, ["kind", "ref"], update=False)


async def on_post_created(session: AsyncSession, event: Event[PostCreated]) -> None:
    data = event.data
    if not await _in_group(session, data.group_id, data.context):
        return
    await _record(
        session,
        {
            "group_id": data.group_id,
            "kind": "post",
            "ref": str(data.id),
            "post_id": data.id,
            "actor_id": data.author_id,
            "post_author_id": data.author_id,
            "post_created_at": data.created_at,
            "occurred_at": data.created_at,
        },
    )


async def on_post_deleted(session: AsyncSession, event: Event[PostDeleted]) -> None:
    """A deleted post takes its comments and reactions out of the history with it."""
    data = event.data
    if data.group_id is None:
        return
    await session.execute(delete(Activity).where(col(Activity.post_id) == data.id))


async def on_comment_created(session: AsyncSession, event: Event[CommentCreated]) -> None:
    data = event.data
    if not await _in_group(session, data.group_id, data.context):
        return
    await _record(
        session,
        {
            "group_id": data.group_id,
            "kind": "comment",
            "ref": str(data.id),
            "post_id": data.post_id,
            "actor_id": data.author_id,
            "post_author_id": data.post_author_id,
            "post_created_at": data.post_created_at,
            "occurred_at": data.created_at,
        },
    )


async def on_comment_deleted(session: AsyncSession, event: Event[CommentDeleted]) -> None:
    data = event.data
    if data.group_id is None:
        return
    await session.execute(
        delete(Activity).where(col(Activity.kind) == "comment", col(Activity.ref) == str(data.id))
    )


def _reaction_ref(post_id: uuid.UUID, persona_id: uuid.UUID, kind: str) -> str:
    return f"{post_id}:{persona_id}:{kind[:40]}"


async def on_reaction_added(session: AsyncSession, event: Event[ReactionAdded]) -> None:
    data = event.data
    if not await _in_group(session, data.group_id, data.context):
        return
    await _record(
        session,
        {
            "group_id": data.group_id,
            "kind": "reaction",
            "ref": _reaction_ref(data.post_id, data.persona_id, data.kind),
            "post_id": data.post_id,
            "actor_id": data.persona_id,
            "occurred_at": data.created_at,
        },
    )


async def on_reaction_removed(session: AsyncSession, event: Event[ReactionRemoved]) -> None:
    data = event.data
    if data.group_id is None:
        return
    ref = _reaction_ref(data.post_id, data.persona_id, data.kind)
    await session.execute(delete(Activity).where(col(Activity.kind) == "reaction", col(Activity.ref) == ref))


async def on_persona_changed(session: AsyncSession, event: IdEvent[PersonaChanged]) -> None:
    if await keep_persona(session, PersonaReplica, event) and event.data.status in GONE:
        await membership.drop_persona(session, handler_outbox(session), event.subject)


async def on_persona_erased(session: AsyncSession, event: IdEvent[PersonaErased]) -> None:
    """Keeps a tombstone without the name, so a late update cannot bring it back."""
    persona_id = event.subject
    await membership.drop_persona(session, handler_outbox(session), persona_id)
    values = {
        "id": persona_id,
        "context": event.data.context[:20],
        "handle": "",
        "display_name": "",
        "status": "erased",
        "updated_at": event.time,
    }
    await upsert(session, PersonaReplica, values, ["id"])


async def on_group_moderated(session: AsyncSession, event: Event[GroupModerated]) -> None:
    """Keeps the latest of moderation's decisions on the group: an event older than the one
    applied last (its envelope's time against ``Group.moderated_at``) changes nothing."""
    state = moderation.STATES[event.type.rsplit(".", 1)[-1]]
    data = event.data
    await moderation.apply(session, handler_outbox(session), data.target_id, data.context, state, event.time)


async def on_records_dispose(session: AsyncSession, event: Event[RecordsDisposal]) -> None:
    """Deletes the activity history from before the cut-off, each group's latest item apart;
    a redelivery finds nothing more to delete."""
    data = event.data
    if data.record_class == records.GROUP_HEALTH and data.before is not None:
        await records.dispose_of_history(session, data.before)


async def on_media_updated(session: AsyncSession, event: Event[MediaUpdated]) -> None:
    data = event.data
    if data.owner_kind == images.OWNER_KIND:
        await images.media_updated(session, data.owner_id, data.media)


persona_changed = Consumer(IdEvent[PersonaChanged], on_persona_changed)
group_moderated = Consumer(Event[GroupModerated], on_group_moderated)

handlers: dict[str, EventHandler] = {
    "persona.created": persona_changed,
    "persona.updated": persona_changed,
    "persona.deactivated": persona_changed,
    "persona.erased": Consumer(IdEvent[PersonaErased], on_persona_erased),
    # Idempotent: the history's rows are keyed by what they record (``_record`` inserts with
    # ON CONFLICT DO NOTHING, concurrent deliveries included), and a deletion deletes them.
    "post.created": Consumer(Event[PostCreated], on_post_created, idempotent=True),
    "post.deleted": Consumer(Event[PostDeleted], on_post_deleted, idempotent=True),
    "comment.created": Consumer(Event[CommentCreated], on_comment_created, idempotent=True),
    "comment.deleted": Consumer(Event[CommentDeleted], on_comment_deleted, idempotent=True),
    "reaction.added": Consumer(Event[ReactionAdded], on_reaction_added, idempotent=True),
    "reaction.removed": Consumer(Event[ReactionRemoved], on_reaction_removed, idempotent=True),
    "moderation.group.hidden": group_moderated,
    "moderation.group.removed": group_moderated,
    "moderation.group.restored": group_moderated,
    "internal.records.dispose": Consumer(Event[RecordsDisposal], on_records_dispose),
    "internal.media.updated": Consumer(Event[MediaUpdated], on_media_updated),
}
