"""What every removal of a post does besides tombstoning it, whoever removes it (its author, a
moderator, the author's erasure, the group's deletion): stored answers forget its text, a
``post.deleted`` event tells the other services and webhook subscribers, and
``internal.records.post`` tells records (decision 0033). A post moderation removes (decision
0032) keeps its text, to be restored: it is announced deleted (``deleted_event``) and nothing is
forgotten; its erasure later tells records alone (``publish_deleted``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.outbox import Outbox
from services.feed import idempotency, records
from services.feed.models import Post

BATCH = 1000  # well under the drivers' limits on bound parameters

# What ``publish_deleted`` reads of each post (``UPDATE … RETURNING`` these): the columns of
# ``post.deleted`` and of the post's record (``records.post_record``).
DELETED_COLUMNS = (
    col(Post.id),
    col(Post.author_id),
    col(Post.context),
    col(Post.audience),
    col(Post.group_id),
    col(Post.created_at),
    col(Post.deleted_at),
    col(Post.moderation),
)


def deleted_event(post: Any, now: datetime) -> tuple[str, str, dict[str, object]]:
    """``post.deleted`` of ``post`` (a row or model with the ``DELETED_COLUMNS``), as (type,
    subject, data)."""
    return (
        "post.deleted",
        str(post.id),
        {
            "id": str(post.id),
            "author_id": str(post.author_id),
            "context": post.context,
            "group_id": str(post.group_id) if post.group_id else None,
            "deleted_at": now.isoformat(),
        },
    )


async def publish_deleted(session: AsyncSession, outbox: Outbox, posts: Sequence[Any], now: datetime) -> None:
    """``posts`` are rows or models with the ``DELETED_COLUMNS``, as they are once deleted; all
    in the caller's transaction, in batches, so that an erasure of thousands of posts stays a
    handful of statements. A post moderation removed was announced deleted then: records alone
    hears of it again."""
    for start in range(0, len(posts), BATCH):
        batch = posts[start : start + BATCH]
        await idempotency.forget(session, [post.id for post in batch])
        events = []
        for post in batch:
            if post.moderation != "removed":
                events.append(deleted_event(post, now))
            events.append(records.post_record(post, "deleted", now))
        await outbox.publish_many(session, events)
