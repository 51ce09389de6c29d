"""Media and their owners (decision 0036): a post, a comment, a persona's avatar or a group's
image takes media by id, with one internal call from the owner service at the owner's
creation (or at an avatar's change), and what the owner's life does to them afterwards.

- ``attach``: every media named must be the persona's own, ready, and unattached or already
  attached to this very owner (an idempotent replay attaches nothing twice), else 422
  ``media-not-attachable`` naming the first that is not, and nothing is attached. Each media
  is claimed by a conditional update, so two owners attaching one media at once cannot both
  have it.
- ``release``: the owner lets go of its media but those it keeps: deleted (an avatar
  replaced), or unattached again (the owner's own write failed after it attached them, so the
  uploader keeps the uploads).
- ``withdraw`` and ``restore``: the owner was deleted or came back (feed's and groups'
  events); a withdrawn media is never served, signed link or not, but is kept: records may
  hold it. A comment's media follow their post too (``post_withdrawn_at``).

Records hears of each of these for media of posts and comments (``records``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.errors import Unprocessable
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.media import records
from services.media.models import Media
from services.media.schemas import AttachRequest, ReleaseRequest, media_attachment

MEDIA_UPDATED = "internal.media.updated"
NOT_ATTACHABLE = "media-not-attachable"


def not_attachable(media_id: uuid.UUID) -> Unprocessable:
    return Unprocessable(
        "Media {media_id} cannot be attached: it must be the persona's own, ready, and not "
        "attached to anything else.",
        params={"media_id": media_id},
        slug=NOT_ATTACHABLE,
        extra={"media_id": str(media_id)},
    )


def updated_event(media: Media) -> tuple[str, str, dict[str, Any]]:
    """``internal.media.updated``: what the owner shows of the media changed (its description)."""
    return (
        MEDIA_UPDATED,
        str(media.id),
        {
            "owner_kind": media.owner_kind,
            "owner_id": str(media.owner_id),
            "media": media_attachment(media).model_dump(mode="json"),
        },
    )


async def attach(session: AsyncSession, outbox: Outbox, body: AttachRequest) -> list[Media]:
    """Attaches the media, in the order asked, and commits."""
    now = utcnow()
    before = {
        m.id: m.owner_kind
        for m in (await session.scalars(select(Media).where(col(Media.id).in_(body.media_ids)))).all()
    }
    post_id = body.owner_id if body.owner_kind == "post" else body.post_id
    for media_id in body.media_ids:
        result: Any = await session.execute(
            update(Media)
            .where(
                col(Media.id) == media_id,
                col(Media.uploader_id) == body.persona_id,
                col(Media.status) == "ready",
                or_(
                    col(Media.owner_kind).is_(None),
                    (col(Media.owner_kind) == body.owner_kind) & (col(Media.owner_id) == body.owner_id),
                ),
            )
            .values(
                owner_kind=body.owner_kind,
                owner_id=body.owner_id,
                post_id=post_id,
                group_id=body.group_id,
                attached_at=func.coalesce(col(Media.attached_at), now),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            await session.rollback()
            raise not_attachable(media_id)
    rows = {
        m.id: m
        for m in (
            await session.scalars(
                select(Media)
                .where(col(Media.id).in_(body.media_ids))
                .execution_options(populate_existing=True)
            )
        ).all()
    }
    attached = [rows[media_id] for media_id in body.media_ids]
    await records.publish(session, outbox, [m for m in attached if before.get(m.id) is None], now)
    await session.commit()
    return attached


async def release(session: AsyncSession, outbox: Outbox, body: ReleaseRequest) -> int:
    """Deletes, or unattaches, every media of the owner but those kept; commits. Returns how
    many. A deleted media's stored bytes are left to the sweeper."""
    now = utcnow()
    query = select(Media).where(
        col(Media.owner_kind) == body.owner_kind, col(Media.owner_id) == body.owner_id
    )
    if body.keep:
        query = query.where(col(Media.id).not_in(body.keep))
    released = list((await session.scalars(query.with_for_update())).all())
    if not released:
        return 0
    for media in released:
        if media.withdrawn_at is None:
            media.withdrawn_at = now
    await records.publish(session, outbox, released, now)
    ids = [m.id for m in released]
    if body.delete:
        await session.execute(delete(Media).where(col(Media.id).in_(ids)))
    else:
        await session.execute(
            update(Media)
            .where(col(Media.id).in_(ids))
            .values(
                owner_kind=None,
                owner_id=None,
                post_id=None,
                group_id=None,
                attached_at=None,
                withdrawn_at=None,
                post_withdrawn_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    await session.commit()
    return len(released)


async def _mark(
    session: AsyncSession,
    outbox: Outbox,
    conditions: Sequence[Any],
    values: dict[str, Any],
    at: datetime,
) -> None:
    """Sets ``values`` on the media that meet ``conditions``; records hears of those whose
    being served changed (a comment withdrawn on its own is not withdrawn again by its post)."""
    rows = list((await session.scalars(select(Media).where(*conditions).with_for_update())).all())
    changed = []
    for media in rows:
        before = records.withdrawn_at(media)
        for name, value in values.items():
            setattr(media, name, value)
        media.updated_at = at
        if (before is None) != (records.withdrawn_at(media) is None):
            changed.append(media)
    await session.flush()
    await records.publish(session, outbox, changed, at)


async def withdraw(
    session: AsyncSession, outbox: Outbox, owner_kind: str, owner_id: uuid.UUID, at: datetime
) -> None:
    """The owner was deleted: its media are no longer served (in the caller's transaction)."""
    await _follow_owner(session, outbox, owner_kind, owner_id, at, withdrawn=True)


async def restore(
    session: AsyncSession, outbox: Outbox, owner_kind: str, owner_id: uuid.UUID, at: datetime
) -> None:
    """The owner is back: its media are served again (in the caller's transaction)."""
    await _follow_owner(session, outbox, owner_kind, owner_id, at, withdrawn=False)


async def _follow_owner(
    session: AsyncSession,
    outbox: Outbox,
    owner_kind: str,
    owner_id: uuid.UUID,
    at: datetime,
    *,
    withdrawn: bool,
) -> None:
    """Withdraws (or restores) the owner's media, and a post's comments' media with it."""

    def changing(column: Any) -> Any:
        return column.is_(None) if withdrawn else column.is_not(None)

    stamp = at if withdrawn else None
    await _mark(
        session,
        outbox,
        [
            col(Media.owner_kind) == owner_kind,
            col(Media.owner_id) == owner_id,
            changing(col(Media.withdrawn_at)),
        ],
        {"withdrawn_at": stamp},
        at,
    )
    if owner_kind == "post":
        await _mark(
            session,
            outbox,
            [
                col(Media.owner_kind) == "comment",
                col(Media.post_id) == owner_id,
                changing(col(Media.post_withdrawn_at)),
            ],
            {"post_withdrawn_at": stamp},
            at,
        )
