"""What moderation's actions do to feed's rows (decision 0032). Moderation owns reports and
decides; feed applies its events (``events``) to its own posts, comments, personas and terms
with the flows below, each in the event's transaction:

- a post or comment ``hidden`` is seen by its author alone; ``removed`` is deleted for everyone
  (``deleted_at``, announced as ``post.deleted``/``comment.deleted``) but keeps its text,
  revisions and tags, for the record and for a restore; ``restored`` brings it back as it was
  (a post fanned out to the home inboxes again, ``post.restored``/``comment.restored``);
  ``released`` lets a held item out: ``post.created``/``comment.created`` (unless an edit held
  it, when it had been announced already) and the notifications it held back;
- a comment is counted in its post's and parent's counts only while everyone sees it
  (``commenting.counted``): hiding, holding or removing it lowers them and deletes the
  notifications naming it, restoring or releasing it raises them again;
- a post is ``locked`` (no new comments) or unlocked; a persona ``limited`` (their posts to the
  organisation reach their followers only) or not;
- a context's held-content terms are replaced whole by a newer version.

Every change of a post or comment also tells records (``records``): ``restored``, or
``moderated`` with the new ``moderation``; a removed item that comes back carries its text
again.

It also answers moderation's one synchronous call, at filing (``routes.internal``): the post or
comment reported, as the reporter sees it (``lookup_post``, ``lookup_comment``).

Every flow is idempotent, and ignores an event older (by its envelope's time) than the last one
applied to the row (``moderated_at``, ``limited_at``; a term set's version): a late event never
undoes a newer action. What its author deleted, or their erasure or the group's deletion took,
stays gone: moderation neither hides nor brings it back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.db import upsert
from kit.outbox import Outbox
from kit.timeutil import as_utc, utcnow
from services.feed import inbox, records
from services.feed.access import as_reader, visible_post
from services.feed.commenting import (
    comment_deleted_event,
    comment_event,
    counted,
    find_by_id,
    notice_targets,
    recount,
)
from services.feed.content import held_since_written
from services.feed.deletion import deleted_event as post_deleted_event
from services.feed.disclosure import comment_content, post_content
from services.feed.models import Comment, HeldTerm, HeldTermSet, Notification, PersonaReplica, Post
from services.feed.notifications import mention_ids, notify
from services.feed.posting import post_event
from services.feed.schemas import ModerationItem, moderation_comment, moderation_post

ContentAction = Literal["hidden", "removed", "restored", "released"]


class NotKnownYet(RuntimeError):
    """An event about a persona that feed's replica does not hold yet (identity's event is on
    its way): the handler fails, and the relay delivers the event again later."""


@dataclass(frozen=True, slots=True)
class _Before:
    """What an item was before an action: what the action then announces depends on it."""

    moderation: str | None
    deleted: bool
    held_since_written: bool

    @property
    def live(self) -> bool:
        return self.moderation is None and not self.deleted


def _before(item: Post | Comment) -> _Before:
    return _Before(
        item.moderation,
        item.deleted_at is not None,
        item.moderation == "held" and held_since_written(item),
    )


def _stale(last: datetime | None, at: datetime) -> bool:
    return last is not None and at < as_utc(last)


async def _gone(session: AsyncSession, item: Post | Comment) -> bool:
    """Deleted by its author, or by the group's deletion, rather than by moderation; or its
    author erased."""
    if item.deleted_at is not None and item.moderation != "removed":
        return True
    author = await session.get(PersonaReplica, item.author_id)
    return author is not None and author.status == "erased"


def _apply(item: Post | Comment, action: ContentAction, at: datetime) -> bool:
    """Changes ``item``'s state as ``action`` says; False when the action does not apply (a
    release of an item that is not held)."""
    if action == "released":
        if item.moderation != "held":
            return False
        item.moderation = None
    elif action == "hidden":
        item.moderation = "hidden"
        item.deleted_at = None
    elif action == "removed":
        item.moderation = "removed"
        item.deleted_at = item.deleted_at or utcnow()
    else:
        item.moderation = None
        item.deleted_at = None
    item.moderated_at = at
    return True


def _change(action: ContentAction) -> records.PostChange:
    """How an action goes into an item's record: ``restored``, or a change of its
    ``moderation``."""
    return "restored" if action == "restored" else "moderated"


async def moderate_post(
    session: AsyncSession, outbox: Outbox, post_id: uuid.UUID, action: ContentAction, at: datetime
) -> None:
    """Applies ``action`` (moderation's event of time ``at``) to the post."""
    post = await session.get(Post, post_id, with_for_update=True)
    if post is None or _stale(post.moderated_at, at) or await _gone(session, post):
        return
    before = _before(post)
    if not _apply(post, action, at):
        return
    now = utcnow()
    if before.deleted and post.deleted_at is None:  # a removed post back, its text with it
        await outbox.publish(session, *records.post_text_record(post, _change(action), now))
    else:
        await outbox.publish(session, *records.post_record(post, _change(action), now))
    if not before.deleted and post.deleted_at is not None:
        await outbox.publish(session, *post_deleted_event(post, now))
    if before.deleted and post.deleted_at is None:
        await inbox.fan_out(session, post)  # inboxes built meanwhile left it out
    if before.live or post.moderation is not None or post.deleted_at is not None:
        return
    data = post_event(post, await post_content(session, post))
    if action != "released":
        await outbox.publish(session, "post.restored", str(post.id), data)
        return
    if before.held_since_written:
        await outbox.publish(session, "post.created", str(post.id), data)
    await _notify_held_mentions(session, post)


async def _notify_held_mentions(session: AsyncSession, post: Post) -> None:
    """The mentions of a released post, but for those already told (before an edit held it)."""
    told = set(
        (
            await session.scalars(
                select(Notification.persona_id).where(
                    col(Notification.post_id) == post.id,
                    col(Notification.comment_id).is_(None),
                    col(Notification.kind) == "mention",
                )
            )
        ).all()
    )
    targets = {p: "mention" for p in mention_ids(post.mentions or []) if p not in told}
    await notify(session, post, post.author_id, targets)


async def moderate_comment(
    session: AsyncSession, outbox: Outbox, comment_id: uuid.UUID, action: ContentAction, at: datetime
) -> None:
    """Applies ``action`` (moderation's event of time ``at``) to the comment, with its post's
    and parent's counts and the notifications naming it."""
    comment = await session.get(Comment, comment_id, with_for_update=True)
    if comment is None or _stale(comment.moderated_at, at) or await _gone(session, comment):
        return
    post = await session.get(Post, comment.post_id)
    if post is None:
        return
    before = _before(comment)
    if not _apply(comment, action, at):
        return
    now = utcnow()
    if before.deleted and comment.deleted_at is None:  # a removed comment back, its text with it
        await outbox.publish(session, *records.comment_text_record(comment, post, _change(action), now))
    else:
        await outbox.publish(session, *records.comment_record(comment, post, _change(action), now))
    await recount(session, comment, int(counted(comment)) - int(before.live))
    if before.live and not counted(comment):
        await session.execute(delete(Notification).where(col(Notification.comment_id) == comment.id))
    if not before.deleted and comment.deleted_at is not None:
        await outbox.publish(
            session, "comment.deleted", str(post.id), comment_deleted_event(comment.id, post, now)
        )
    if before.live or not counted(comment):
        return
    data = comment_event(comment, post, await comment_content(session, comment, post))
    if action != "released":
        await outbox.publish(session, "comment.restored", str(post.id), data)
        return
    if before.held_since_written:
        await outbox.publish(session, "comment.created", str(post.id), data)
    parent = await session.get(Comment, comment.parent_id) if comment.parent_id else None
    targets = notice_targets(post, parent, comment.mentions or [])
    await notify(session, post, comment.author_id, targets, comment_id=comment.id)


async def lock_post(session: AsyncSession, post_id: uuid.UUID, locked: bool, at: datetime) -> None:
    """Locks the post (no new comments: ``commenting.comment``) or unlocks it."""
    post = await session.get(Post, post_id, with_for_update=True)
    if post is None or _stale(post.moderated_at, at) or await _gone(session, post):
        return
    post.locked_at = at if locked else None
    post.moderated_at = at


async def limit_persona(session: AsyncSession, persona_id: uuid.UUID, limited: bool, at: datetime) -> None:
    """Limits the persona (``timelines.unlimited_author``) or lifts the limit. A persona the
    replica does not hold yet is ``NotKnownYet``: the limit must not be lost."""
    persona = await session.get(PersonaReplica, persona_id, with_for_update=True)
    if persona is None:
        raise NotKnownYet(f"persona {persona_id} is not in the replica yet")
    if _stale(persona.limited_at, at):
        return
    persona.limited = limited
    persona.limited_at = at


async def replace_terms(
    session: AsyncSession, context: str, version: int, terms: Sequence[HeldTerm], at: datetime
) -> None:
    """Makes ``terms`` (each of ``context``) the context's whole set, when ``version`` is newer
    than the set held."""
    current = await session.get(HeldTermSet, context, with_for_update=True)
    if current is not None and current.version >= version:
        return
    await session.execute(delete(HeldTerm).where(col(HeldTerm.context) == context))
    session.add_all(terms)
    await upsert(
        session, HeldTermSet, {"context": context, "version": version, "updated_at": at}, ["context"]
    )


# The lookups at filing ---------------------------------------------------------------------------


async def lookup_post(session: AsyncSession, reader_id: uuid.UUID, post_id: uuid.UUID) -> ModerationItem:
    """The post as ``reader_id`` sees it (``access.visible_post``, as a GET of the post would),
    or 404, the same for a post that is missing and one the reader may not see."""
    reader = await as_reader(session, reader_id)
    post: Post = (await visible_post(session, reader, post_id))[0]
    return moderation_post(post)


async def lookup_comment(
    session: AsyncSession, reader_id: uuid.UUID, comment_id: uuid.UUID
) -> ModerationItem:
    """The comment as ``reader_id`` sees it (``commenting.find``: its post first), or 404, the
    same for a comment that is missing and one the reader may not see. A comment's id alone
    names it: its post is read from it, and a missing one goes the same way with no post."""
    found: Comment = (await find_by_id(session, await as_reader(session, reader_id), comment_id))[0]
    post = await session.get(Post, found.post_id)  # read by ``find`` already
    assert post is not None
    return moderation_comment(found, post)
