"""Feed's part in disposition (decision 0033): records keeps the records copy and the retention
schedule, and tells feed what to destroy when an item's retention has ended and no hold covers
it (``internal.records.dispose``, applied by ``events``). These flows destroy it for good, each
in the event's transaction, with a few statements for a whole batch (records sends at most a
thousand items an event):

- a post: its row, comments, reactions, revisions, tags, the notifications about it and its
  comments, its home inbox entries and the stored answers that created it or its comments;
- a comment: its row and the notifications about it (its replies keep their rows), off its
  post's and parent's counts;
- a reaction: its row, off its post's counts;
- a post's revisions written before a time, while the post stays;
- notifications written before a time, of everyone.

What others still knew of is announced as any deletion is (``post.deleted``,
``comment.deleted``, ``reaction.removed``), so that the other services' copies and webhook
subscribers follow; records is not told (it disposed of its copy first). Each flow is
idempotent: a redelivery finds nothing left and changes nothing. Other services' classes are
theirs (``events`` ignores them)."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.feed import idempotency, inbox
from services.feed.commenting import comment_deleted_event
from services.feed.content import held_since_written
from services.feed.deletion import DELETED_COLUMNS, deleted_event
from services.feed.models import Comment, Notification, Post, PostRevision, PostTag, Reaction
from services.feed.reacting import reaction_event
from services.feed.records import BATCH, scopes


def _batches(ids: Sequence[Any]) -> list[list[Any]]:
    unique = list(dict.fromkeys(ids))
    return [unique[start : start + BATCH] for start in range(0, len(unique), BATCH)]


def _announced(item: Any) -> bool:
    """Whether the other services know of the post or comment (a row with its ``deleted_at``,
    ``moderation``, ``created_at`` and ``moderated_at``) and not yet of its deletion: deleted
    by its author or a moderator, it was announced deleted then; held since it was written, it
    was never announced."""
    return item.deleted_at is None and not (item.moderation == "held" and held_since_written(item))


async def _lower(
    session: AsyncSession, model: type[Post] | type[Comment], name: str, counts: Counter[uuid.UUID]
) -> None:
    """Lowers the count ``name`` of the row of each id of ``counts`` by its number: one
    statement per distinct number, not per row."""
    column = getattr(model, name)
    by_amount: defaultdict[int, list[uuid.UUID]] = defaultdict(list)
    for row_id, amount in counts.items():
        by_amount[amount].append(row_id)
    for amount, row_ids in by_amount.items():
        for batch in _batches(row_ids):
            await session.execute(
                update(model).where(col(model.id).in_(batch)).values({column: column - amount})
            )


async def dispose_posts(session: AsyncSession, outbox: Outbox, post_ids: Sequence[uuid.UUID]) -> None:
    """Destroys the posts with everything of them (module docstring)."""
    now = utcnow()
    for batch in _batches(post_ids):
        posts = (
            await session.execute(
                delete(Post)
                .where(col(Post.id).in_(batch))
                .returning(*DELETED_COLUMNS, col(Post.moderated_at))
            )
        ).all()
        comment_ids = (
            await session.scalars(
                delete(Comment).where(col(Comment.post_id).in_(batch)).returning(col(Comment.id))
            )
        ).all()
        for model in (Reaction, PostRevision, PostTag, Notification):
            await session.execute(delete(model).where(col(model.post_id).in_(batch)))
        await idempotency.forget(session, batch)
        for comments in _batches(comment_ids):
            await idempotency.forget(session, comments)
        await inbox.forget(session, batch)
        await outbox.publish_many(session, [deleted_event(post, now) for post in posts if _announced(post)])


async def dispose_comments(session: AsyncSession, outbox: Outbox, comment_ids: Sequence[uuid.UUID]) -> None:
    """Destroys the comments and the notifications about them; replies of a top-level comment
    that goes stay, and the counts the comments were in are lowered."""
    now = utcnow()
    for batch in _batches(comment_ids):
        gone = (
            await session.execute(
                delete(Comment)
                .where(col(Comment.id).in_(batch))
                .returning(
                    col(Comment.id),
                    col(Comment.post_id),
                    col(Comment.parent_id),
                    col(Comment.created_at),
                    col(Comment.deleted_at),
                    col(Comment.moderation),
                    col(Comment.moderated_at),
                )
            )
        ).all()
        # Counted while everyone saw them (``commenting.counted``).
        live = [row for row in gone if row.deleted_at is None]
        counted = [row for row in live if row.moderation is None]
        await _lower(session, Post, "comment_count", Counter(row.post_id for row in counted))
        replies = Counter(row.parent_id for row in counted if row.parent_id is not None)
        await _lower(session, Comment, "reply_count", replies)
        await session.execute(delete(Notification).where(col(Notification.comment_id).in_(batch)))
        await idempotency.forget(session, batch)
        announced = [row for row in live if _announced(row)]
        posts = await scopes(session, [row.post_id for row in announced])
        events = [
            ("comment.deleted", str(row.post_id), comment_deleted_event(row.id, posts[row.post_id], now))
            for row in announced
            if row.post_id in posts
        ]
        await outbox.publish_many(session, events)


async def dispose_reactions(
    session: AsyncSession, outbox: Outbox, reactions: Sequence[tuple[uuid.UUID, uuid.UUID, str]]
) -> None:
    """Deletes the (post, persona, kind) reactions, off their posts' counts."""
    for batch in _batches(reactions):
        key = tuple_(col(Reaction.post_id), col(Reaction.persona_id), col(Reaction.kind))
        gone = (
            await session.execute(
                delete(Reaction)
                .where(key.in_(batch))
                .returning(col(Reaction.post_id), col(Reaction.persona_id), col(Reaction.kind))
            )
        ).all()
        by_kind: defaultdict[str, Counter[uuid.UUID]] = defaultdict(Counter)
        for row in gone:
            by_kind[row.kind][row.post_id] += 1
        for kind, counts in by_kind.items():
            await _lower(session, Post, f"{kind}_count", counts)
        posts = await scopes(session, [row.post_id for row in gone])
        events = [
            (
                "reaction.removed",
                str(row.post_id),
                reaction_event(posts[row.post_id], row.persona_id, row.kind),
            )
            for row in gone
            if row.post_id in posts
        ]
        await outbox.publish_many(session, events)


async def dispose_revisions(session: AsyncSession, post_ids: Sequence[uuid.UUID], before: datetime) -> None:
    """Deletes the posts' revisions written before ``before``; the posts stay as they are."""
    for batch in _batches(post_ids):
        await session.execute(
            delete(PostRevision).where(
                col(PostRevision.post_id).in_(batch), col(PostRevision.created_at) < before
            )
        )


async def dispose_notifications(session: AsyncSession, before: datetime) -> int:
    """Deletes every notification written before ``before``, a batch per statement, oldest
    first (ids are time-ordered: the batch is read along the primary key). Returns how many."""
    removed = 0
    while True:
        due = (
            select(Notification.id)
            .where(col(Notification.created_at) < before)
            .order_by(col(Notification.id))
        )
        result: Any = await session.execute(
            delete(Notification).where(col(Notification.id).in_(due.limit(BATCH)))
        )
        count = int(result.rowcount or 0)
        removed += count
        if count < BATCH:
            return removed
