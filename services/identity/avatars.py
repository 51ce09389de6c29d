"""A persona's avatar: an image uploaded to media and attached by its id (decision 0036).

Identity keeps which file is the avatar (``Persona.avatar``, the ``MediaAttachment`` media
answered) and decides who sees it; media keeps the bytes and, when someone other than the
uploader asks for them, asks identity (``seen_by``), so the file is seen by exactly those who
see the persona, by the one rule of ``personas.visible``.

Only the persona's owner, with that persona's own token, sets or removes it: any other
persona, the owner's other one included, is answered as for a persona that does not exist.
Setting one is a profile edit of that persona alone, published at once like any other
(``persona.updated``; docs/boundary.md: the owner's own action in the persona's context).

The order of the calls keeps media and identity in step: the upload is attached first (a
refusal changes nothing); if identity's own write then fails (or the upload is not an image),
media is told to give the upload back to its uploader; once identity has committed, the
avatar it replaced is deleted at media. That last call is best effort: a failure leaves the
old file attached, still seen only by those who see the persona, and the next change of the
avatar releases it. Removing the avatar deletes the file at media first, so a removal that
succeeds leaves nothing readable; media being down is a 503 and nothing changes.

The row of the persona is locked (on PostgreSQL) for the whole change, so two changes of one
avatar at once cannot release each other's file.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.media import Media, MediaAttachment, media_unavailable
from kit.errors import NotFound
from kit.outbox import Outbox
from services.identity import personas
from services.identity.models import Account, Persona

OWNER_KIND = "avatar"
NO_PERSONA = "No persona with this id."


async def _own(session: AsyncSession, own: Persona, persona_id: uuid.UUID) -> Persona:
    """The caller's own persona, locked, when the path names it; else the 404 of a persona
    that does not exist, whoever's it is (the owner's other persona included)."""
    if persona_id != own.id:
        raise NotFound(NO_PERSONA)
    persona = await session.scalar(
        select(Persona)
        .where(col(Persona.id) == own.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if persona is None:
        raise NotFound(NO_PERSONA)
    return persona


def _avatar_id(persona: Persona) -> uuid.UUID | None:
    return None if persona.avatar is None else uuid.UUID(str(persona.avatar["id"]))


async def _announce(session: AsyncSession, outbox: Outbox, persona: Persona) -> None:
    personas.touch(persona)
    await outbox.publish(session, "persona.updated", str(persona.id), personas.event_data(persona))


async def set_avatar(
    session: AsyncSession,
    outbox: Outbox,
    media: Media,
    own: Persona,
    persona_id: uuid.UUID,
    media_id: uuid.UUID,
) -> Persona:
    """Makes the caller's upload ``media_id`` the avatar of its own persona ``persona_id``."""
    persona = await _own(session, own, persona_id)

    async def write(attachment: MediaAttachment) -> None:
        try:
            persona.avatar = attachment.model_dump(mode="json")
            await _announce(session, outbox, persona)
            await session.commit()
        except Exception:
            await session.rollback()
            raise

    shown = _avatar_id(persona)
    await media.replace_image(
        OWNER_KIND, persona.id, persona.id, media_id, shown=shown, what="An avatar", write=write
    )
    return persona


async def remove_avatar(
    session: AsyncSession, outbox: Outbox, media: Media, own: Persona, persona_id: uuid.UUID
) -> None:
    """Removes the avatar of the caller's own persona once its file is deleted at media (503,
    nothing changed, while media does not answer). Removing none changes nothing at identity
    and still asks media to delete any file left attached to the persona (best effort)."""
    persona = await _own(session, own, persona_id)
    released = await media.release(OWNER_KIND, persona.id, keep=[], delete=True)
    if persona.avatar is None:
        return
    if not released:
        raise media_unavailable()
    persona.avatar = None
    await _announce(session, outbox, persona)
    await session.commit()


async def seen_by(session: AsyncSession, persona_id: uuid.UUID, reader_id: uuid.UUID) -> None:
    """Media's question (decision 0036): whether the persona ``reader_id`` sees the persona
    ``persona_id``, and so its avatar. The answer of ``GET /api/v1/personas/{id}`` to a token
    of the reader: the reader must be an active persona of an active account (as the token
    check requires, ``deps._caller``), and the persona one ``personas.visible`` shows in the
    reader's context. Raises the 404 of a missing persona otherwise."""
    reader = await session.get(Persona, reader_id)
    if reader is None or personas.effective_status(reader) != "active":
        raise NotFound(NO_PERSONA)
    account = await session.get(Account, reader.account_id)
    if account is None or account.status != "active":
        raise NotFound(NO_PERSONA)
    await personas.visible(session, reader.kind, persona_id)


async def media_updated(session: AsyncSession, persona_id: uuid.UUID, attachment: MediaAttachment) -> bool:
    """Media's word that an attached file changed (its description, edited by its uploader):
    the persona's avatar shows it, when that file is still the avatar. Not a profile edit of
    its own: ``updated_at`` stays and no event follows, as no event carries the avatar.
    Returns whether the avatar changed."""
    persona = await session.scalar(select(Persona).where(col(Persona.id) == persona_id).with_for_update())
    if persona is None or _avatar_id(persona) != attachment.id:
        return False
    persona.avatar = attachment.model_dump(mode="json")
    return True
