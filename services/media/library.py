"""A persona's uploads as ``/api/v1/media`` shows them: finding a media for a reader, the
uploader's list, editing a description, deleting an upload, and the other deletions (a
persona's erasure, records' disposal, the sweeper's) that share its rule.

Who reads a media: its uploader always; anyone else only when its owner says so
(``visibility``), and a media its owner's reader may not see is the 404 of a missing id.
Changing or deleting one is its uploader's alone; to anyone else it is missing.

Deleting an upload deletes its row; its stored bytes are left to the sweeper (``sweeping``),
which deletes what no row names, except the bytes as received, which the uploader's own
deletion removes at once. A media attached to something is not the uploader's to delete
(409 ``media-attached``): its owner lets go of it (``attachments.release``), and records may
hold a post's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import and_, delete, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.principal import Principal
from kit.errors import BadRequest, Conflict, NotFound
from kit.outbox import Outbox
from kit.timeutil import as_utc, utcnow
from services.media import attachments, records, visibility
from services.media.models import Media
from services.media.schemas import MediaUpdate
from services.media.settings import MediaSettings

BATCH = 1000
MISSING = "No media with this id."


def not_found() -> NotFound:
    return NotFound(MISSING)


async def readable(
    session: AsyncSession,
    client: httpx.AsyncClient,
    settings: MediaSettings,
    media_id: uuid.UUID,
    reader: Principal,
) -> Media:
    """The media, when ``reader`` may read it; else 404."""
    assert reader.persona_id is not None
    media = await session.get(Media, media_id)
    if media is None or not await visibility.reader_sees(
        client, settings, media, reader.persona_id, reader.context
    ):
        raise not_found()
    return media


async def own(session: AsyncSession, media_id: uuid.UUID, caller: Principal, *, lock: bool = False) -> Media:
    """The caller's own upload, else 404."""
    media = await session.get(Media, media_id, with_for_update=lock)
    if media is None or media.uploader_id != caller.persona_id:
        raise not_found()
    return media


def cursor_of(media: Media) -> list[str]:
    """A media's place in the uploader's list: when it was uploaded, then its id."""
    return [as_utc(media.created_at).isoformat(), str(media.id)]


def cursor_key(key: list[Any] | None) -> tuple[datetime, uuid.UUID] | None:
    """The place a cursor of the uploader's list names (``cursor_of``); 400 when it is not one."""
    if key is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(str(key[0]))), uuid.UUID(str(key[1]))
    except ValueError:
        raise BadRequest("The cursor is not valid.", slug="bad-cursor") from None


async def list_own(
    session: AsyncSession, caller: Principal, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> Sequence[Media]:
    """The caller's uploads, newest first, ``limit + 1`` of them (the extra one says another
    page exists)."""
    query = select(Media).where(col(Media.uploader_id) == caller.persona_id)
    if after is not None:
        at, last = after
        query = query.where(
            or_(col(Media.created_at) < at, and_(col(Media.created_at) == at, col(Media.id) < last))
        )
    query = query.order_by(col(Media.created_at).desc(), col(Media.id).desc()).limit(limit + 1)
    return (await session.scalars(query)).all()


async def describe(
    session: AsyncSession, outbox: Outbox, media_id: uuid.UUID, caller: Principal, body: MediaUpdate
) -> Media:
    """Changes the description and commits; an attached media's owner hears of it
    (``internal.media.updated``), and records too for a post's or a comment's."""
    media = await own(session, media_id, caller, lock=True)
    if media.description != body.description:
        now = utcnow()
        media.description = body.description
        media.updated_at = now
        await session.flush()
        if media.owner_kind is not None and media.owner_id is not None:
            await outbox.publish(session, *attachments.updated_event(media))
            await records.publish(session, outbox, [media], now)
    await session.commit()
    return media


async def remove(session: AsyncSession, media_id: uuid.UUID, caller: Principal) -> str | None:
    """Deletes the caller's upload unless it is attached (409) and commits. Returns the key of
    its bytes as received, still stored when it was never processed, for the caller to delete."""
    media = await own(session, media_id, caller, lock=True)
    if media.owner_kind is not None:
        raise Conflict(
            "The media is attached; remove it from its post, comment, avatar or group first.",
            slug="media-attached",
        )
    incoming = media.incoming_key
    await session.delete(media)
    await session.commit()
    return incoming


async def forget(session: AsyncSession, condition: Any) -> int:
    """Deletes the media rows that meet ``condition``, in batches, in the caller's transaction;
    their bytes are left to the sweeper. Returns how many."""
    removed = 0
    while True:
        ids = list((await session.scalars(select(Media.id).where(condition).limit(BATCH))).all())
        if not ids:
            return removed
        await session.execute(delete(Media).where(col(Media.id).in_(ids)))
        removed += len(ids)


async def erase(session: AsyncSession, outbox: Outbox, persona_id: uuid.UUID, at: datetime) -> None:
    """An erased persona's uploads are deleted, but for those attached to posts and comments:
    records keeps its copy of those posts whatever happens to their author, so their media are
    withdrawn (never served again) and kept until records disposes of them."""
    recorded = col(Media.owner_kind).in_(records.RECORDED_OWNERS)
    await forget(
        session, and_(col(Media.uploader_id) == persona_id, or_(~recorded, col(Media.owner_kind).is_(None)))
    )
    rows = list(
        (
            await session.scalars(
                select(Media)
                .where(col(Media.uploader_id) == persona_id, col(Media.withdrawn_at).is_(None))
                .with_for_update()
            )
        ).all()
    )
    for media in rows:
        media.withdrawn_at = at
        media.updated_at = at
    await session.flush()
    await records.publish(session, outbox, rows, at)


async def dispose(session: AsyncSession, ids: Sequence[uuid.UUID]) -> int:
    """Records destroys these media for good (a disposition); in the caller's transaction."""
    return await forget(session, col(Media.id).in_(list(ids)))
