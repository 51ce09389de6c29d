"""What media does with other services' events, and the events it publishes (decision 0036).

Consumed:

- identity's ``persona.*``: the replica that checks tokens; ``persona.erased`` deletes the
  persona's uploads (``library.erase``: those attached to posts and comments are withdrawn and
  kept for records instead);
- feed's ``post.deleted``/``post.restored`` (subject: the post) and ``comment.deleted``/
  ``comment.restored`` (subject: the post, ``id``: the comment): the owner's media are
  withdrawn or served again, and a post's comments' media follow their post;
- groups' ``group.deleted`` (subject: the group): its image is deleted (a group image is no
  record, and a deleted group does not come back);
- records' ``internal.records.dispose`` with ``{"kind": "media", "ids": [...]}``: those media
  are destroyed for good; the disposals of other kinds are other services' and ignored.

Published (built in ``attachments`` and ``records``, typed here):

- ``internal.media.updated`` (subject: the media) to feed, groups and identity: what an owner
  shows of an attached media changed (``MediaUpdated``);
- ``internal.records.media`` (subject: the media) to records (``MediaRecord``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.events import PersonaChanged, PersonaErased, erase_persona, keep_persona
from kit.outbox import Consumer, Event, EventHandler, IdEvent, handler_outbox
from kit.timeutil import as_utc
from services.media import attachments, library
from services.media.models import Media, PersonaReplica
from services.media.schemas import MediaAttachment, MediaType, OwnerKind


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PostChanged(_Data):
    """``post.deleted``, ``post.restored`` (feed); the subject is the post."""


class CommentChanged(_Data):
    """``comment.deleted``, ``comment.restored`` (feed); the subject is the comment's post."""

    id: uuid.UUID


class GroupDeleted(_Data):
    """``group.deleted`` (groups); the subject is the group."""


class MediaDisposed(_Data):
    kind: Literal["media"]
    ids: list[uuid.UUID] = Field(max_length=1000)


class OtherDisposal(_Data):
    """A disposal of another kind or class: another service's."""


def _disposal(data: Any) -> str:
    return "media" if isinstance(data, dict) and data.get("kind") == "media" else "other"


Disposal = Annotated[
    Annotated[MediaDisposed, Tag("media")] | Annotated[OtherDisposal, Tag("other")],
    Discriminator(_disposal),
]
"""``internal.records.dispose`` (records); the subject is the disposition run."""


class MediaUpdated(BaseModel):
    """``internal.media.updated``: subject the media id."""

    owner_kind: OwnerKind
    owner_id: uuid.UUID
    media: MediaAttachment


class MediaRecord(BaseModel):
    """``internal.records.media``: subject the media id (``records``)."""

    owner_kind: Literal["post", "comment"]
    owner_id: uuid.UUID
    post_id: uuid.UUID | None
    group_id: uuid.UUID | None
    uploader_id: uuid.UUID
    context: Literal["professional", "personal"]
    media_type: MediaType
    content_type: str
    filename: str
    description: str | None
    size: int
    sha256: str | None
    attached_at: datetime | None
    withdrawn_at: datetime | None
    at: datetime


async def on_persona_changed(session: AsyncSession, event: IdEvent[PersonaChanged]) -> None:
    await keep_persona(session, PersonaReplica, event)


async def on_persona_erased(session: AsyncSession, event: IdEvent[PersonaErased]) -> None:
    await erase_persona(session, PersonaReplica, event)
    await library.erase(session, handler_outbox(session), event.subject, as_utc(event.time))


async def on_post_deleted(session: AsyncSession, event: IdEvent[PostChanged]) -> None:
    await attachments.withdraw(session, handler_outbox(session), "post", event.subject, as_utc(event.time))


async def on_post_restored(session: AsyncSession, event: IdEvent[PostChanged]) -> None:
    await attachments.restore(session, handler_outbox(session), "post", event.subject, as_utc(event.time))


async def on_comment_deleted(session: AsyncSession, event: IdEvent[CommentChanged]) -> None:
    await attachments.withdraw(session, handler_outbox(session), "comment", event.data.id, as_utc(event.time))


async def on_comment_restored(session: AsyncSession, event: IdEvent[CommentChanged]) -> None:
    await attachments.restore(session, handler_outbox(session), "comment", event.data.id, as_utc(event.time))


async def on_group_deleted(session: AsyncSession, event: IdEvent[GroupDeleted]) -> None:
    await library.forget(
        session, (col(Media.owner_kind) == "group_image") & (col(Media.owner_id) == event.subject)
    )


async def on_dispose(session: AsyncSession, event: Event[Disposal]) -> None:
    if isinstance(event.data, MediaDisposed):
        await library.dispose(session, event.data.ids)


persona_changed = Consumer(IdEvent[PersonaChanged], on_persona_changed)

handlers: dict[str, EventHandler] = {
    "persona.created": persona_changed,
    "persona.updated": persona_changed,
    "persona.deactivated": persona_changed,
    "persona.erased": Consumer(IdEvent[PersonaErased], on_persona_erased),
    "post.deleted": Consumer(IdEvent[PostChanged], on_post_deleted),
    "post.restored": Consumer(IdEvent[PostChanged], on_post_restored),
    "comment.deleted": Consumer(IdEvent[CommentChanged], on_comment_deleted),
    "comment.restored": Consumer(IdEvent[CommentChanged], on_comment_restored),
    "group.deleted": Consumer(IdEvent[GroupDeleted], on_group_deleted),
    "internal.records.dispose": Consumer(Event[Disposal], on_dispose),
}
