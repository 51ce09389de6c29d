"""What media tells records (decisions 0033 and 0036): ``internal.records.media`` (subject: the
media id), the whole recorded state of a media attached to a post or a comment, whenever it is
attached, withdrawn (its owner deleted, or released by it), restored or its description edited.

Avatars and group images are not records (decision 0036, consequences): nothing is sent for
them. ``sha256`` and ``size`` are those of the stored file, the bytes records exports
(``GET /internal/records/media/{id}/file``). ``post_id`` is the post itself for a post's media
and the comment's post for a comment's, so records can class a media with its post.
``withdrawn_at`` is when the media stopped being served (its owner's deletion, or its
comment's post's), null while it is served.

Records, in turn, destroys media for good with ``internal.records.dispose``
``{"kind": "media", "ids": [...]}`` (``events``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.outbox import Outbox
from kit.timeutil import as_utc
from services.media.models import Media

MEDIA_RECORD = "internal.records.media"
RECORDED_OWNERS = ("post", "comment")


def _time(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def withdrawn_at(media: Media) -> datetime | None:
    """When the media stopped being served, if it did: the earlier of its own owner's
    deletion and its comment's post's."""
    times = [as_utc(t) for t in (media.withdrawn_at, media.post_withdrawn_at) if t is not None]
    return min(times) if times else None


def media_record(media: Media, at: datetime) -> dict[str, object]:
    """The data of ``internal.records.media``."""
    return {
        "owner_kind": media.owner_kind,
        "owner_id": str(media.owner_id) if media.owner_id else None,
        "post_id": str(media.post_id) if media.post_id else None,
        "group_id": str(media.group_id) if media.group_id else None,
        "uploader_id": str(media.uploader_id),
        "context": media.context,
        "media_type": media.media_type,
        "content_type": media.content_type,
        "filename": media.filename,
        "description": media.description,
        "size": media.file_size if media.file_size is not None else media.size,
        "sha256": media.file_key,
        "attached_at": _time(media.attached_at),
        "withdrawn_at": _time(withdrawn_at(media)),
        "at": as_utc(at).isoformat(),
    }


async def publish(session: AsyncSession, outbox: Outbox, media: Iterable[Media], at: datetime) -> None:
    """Adds the record of each media attached to a post or a comment to the caller's
    transaction; others are not records."""
    events = [
        (MEDIA_RECORD, str(m.id), media_record(m, at)) for m in media if m.owner_kind in RECORDED_OWNERS
    ]
    await outbox.publish_many(session, events)
