"""A group's image: a picture uploaded to media and attached by its id (decision 0036).

Groups keeps which file is the image (``Group.image``, the ``MediaAttachment`` media answered)
and decides who sees it; media keeps the bytes and, when someone other than the uploader asks
for them, asks groups (``seen_by``), so the file is seen by exactly those who see the group, by
groups' one rule (``access.visible_group``): a secret group's image by its members and invited
personas, a moderated group's by no one (a hidden one's by its owners), a deleted group's by
no one.

Those who may change the charter change the image (its owners, and administrators), on a
group that is neither archived nor under moderation; each change is a ``group.updated``, as a
charter change is. The image is not a record of the group (records keeps none: a replaced one
is deleted), so it sends nothing to records.

The order of the calls keeps media and groups in step: the upload is attached first (a
refusal changes nothing); if groups' own write then fails (or the upload is not an image),
media is told to give the upload back to its uploader; once groups has committed, the image
it replaced is deleted at media. That last call is best effort: a failure leaves the old file
attached, still seen only by those who see the group, and the next change of the image
releases it. Removing the image deletes the file at media first, so a removal that succeeds
leaves nothing readable; media being down is a 503 and nothing changes. The group is locked
(``Access.relock``) for the whole change, so two changes at once cannot release each other's
file.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from domain.media import Media, MediaAttachment, media_unavailable
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.groups import access, membership
from services.groups.access import Access, group_not_found, lock_group, visible_group
from services.groups.models import Group

OWNER_KIND = "group_image"
ACTION = "change its image"
_MEDIA_LOOKUP = "media-lookup"  # what media's reader has where a request has its token id


def _image_id(group: Group) -> uuid.UUID | None:
    return None if group.image is None else uuid.UUID(str(group.image["id"]))


async def _changeable(session: AsyncSession, seen: Access) -> Group:
    """The group, locked, when the caller may change it as a charter is changed."""
    seen.require("owner", admin=True, action=ACTION)
    await seen.relock(session)
    seen.require("owner", admin=True, action=ACTION)
    seen.require_writable()
    return seen.group


async def _announce(session: AsyncSession, outbox: Outbox, group: Group) -> None:
    group.updated_at = utcnow()
    session.add(group)
    await session.flush()
    await outbox.publish(session, "group.updated", str(group.id), membership.group_event(group))


async def set_image(
    session: AsyncSession, outbox: Outbox, media: Media, seen: Access, media_id: uuid.UUID
) -> Group:
    """Makes the caller's upload ``media_id`` the group's image."""
    group = await _changeable(session, seen)

    async def write(attachment: MediaAttachment) -> None:
        try:
            group.image = attachment.model_dump(mode="json")
            await _announce(session, outbox, group)
            await session.commit()
        except Exception:
            await session.rollback()
            raise

    group_id, shown = group.id, _image_id(group)
    await media.replace_image(
        OWNER_KIND, group_id, seen.persona_id, media_id, shown=shown, what="A group's image", write=write
    )
    return group


async def remove_image(session: AsyncSession, outbox: Outbox, media: Media, seen: Access) -> None:
    """Removes the group's image once its file is deleted at media (503, nothing changed, while
    media does not answer). Removing none changes nothing at groups and still asks media to
    delete any file left attached to the group (best effort)."""
    group = await _changeable(session, seen)
    released = await media.release(OWNER_KIND, group.id, keep=[], delete=True)
    if group.image is None:
        return
    if not released:
        raise media_unavailable()
    group.image = None
    await _announce(session, outbox, group)
    await session.commit()


async def seen_by(session: AsyncSession, group_id: uuid.UUID, reader_id: uuid.UUID) -> None:
    """Media's question (decision 0036): whether the persona ``reader_id`` sees the group, and
    so its image, by ``access.visible_group`` for that persona (an active one groups knows, with
    no role). Raises the 404 of a missing group otherwise."""
    reader = await access.reader(session, reader_id, via=_MEDIA_LOOKUP)
    if reader is None:
        raise group_not_found()
    await visible_group(session, group_id, reader)


async def media_updated(session: AsyncSession, group_id: uuid.UUID, attachment: MediaAttachment) -> bool:
    """Media's word that an attached file changed (its description, edited by its uploader):
    the group shows it, when that file is still its image. ``updated_at`` moves, so the group's
    ETag does, but no event follows: no event carries the image. The caller commits (the event
    receiver does). Returns whether the image changed."""
    group = await session.get(Group, group_id)
    if group is None or _image_id(group) != attachment.id:
        return False
    await lock_group(session, group)  # reads the row again under the lock
    if _image_id(group) != attachment.id:
        return False
    group.image = attachment.model_dump(mode="json")
    group.updated_at = utcnow()
    session.add(group)
    return True
