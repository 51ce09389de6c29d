"""What feed tells records of its content (decision 0033): the whole state of a post, a comment
or a reaction at every change of it, so that records keeps a copy of every state an item had,
whatever its author or a moderator does to it later.

Content events to other services and to webhooks never carry text (docs/boundary.md); these
do, and go to records alone (``internal.records.*``; the launcher's subscriptions). Every flow
that changes an item publishes one of them in its own transaction, built here and nowhere
else:

- ``internal.records.post`` (subject: the post): ``change`` is ``created``, ``edited``,
  ``deleted`` (by its author, the author's erasure or the group's deletion), ``moderated``
  (hidden, held, removed or released) or ``restored``; the text (``body``, ``links``,
  ``mentions`` as persona ids, ``tags``) comes at creation and whenever it changed (an edit, a
  removed post coming back), with its language (``lang``), never with a deletion;
- ``internal.records.comment`` (subject: the comment): likewise, its text ``body``, ``lang``
  and ``mentions``;
- ``internal.records.reaction`` (subject: the post): ``added`` or ``removed``.

Each builder returns the event as (type, subject, data), for ``Outbox.publish`` (``*event``)
and ``Outbox.publish_many``: a flow that announces the change publicly too writes both with
one ``publish_many``, which costs the statements of one event. The shapes are typed in
``events`` (``PostRecord``, ``CommentRecord``, ``ReactionRecord``).

Feed's part in disposition (records telling it what to destroy) is ``disposal``'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.outbox import Outbox
from services.feed.models import Comment, Post

PostChange = Literal["created", "edited", "deleted", "moderated", "restored"]
CommentChange = PostChange
ReactionChange = Literal["added", "removed"]

RecordEvent = tuple[str, str, dict[str, object]]

BATCH = 1000  # ids and events per statement, as ``deletion``'s: under the drivers' limits

# What ``comment_record`` reads of a comment (``UPDATE … RETURNING`` these), besides its post's.
COMMENT_COLUMNS = (
    col(Comment.id),
    col(Comment.post_id),
    col(Comment.parent_id),
    col(Comment.author_id),
    col(Comment.created_at),
    col(Comment.deleted_at),
    col(Comment.moderation),
)


class PostScope(Protocol):
    """Where a post is: what a comment's or a reaction's record tells of it."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def context(self) -> str: ...
    @property
    def group_id(self) -> uuid.UUID | None: ...


class PostState(PostScope, Protocol):
    """What a post's record tells (a ``Post``, or a row of ``deletion.DELETED_COLUMNS``)."""

    @property
    def author_id(self) -> uuid.UUID: ...
    @property
    def audience(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def deleted_at(self) -> datetime | None: ...
    @property
    def moderation(self) -> str | None: ...


class PostText(PostState, Protocol):
    @property
    def body(self) -> str: ...
    @property
    def lang(self) -> str | None: ...
    @property
    def links(self) -> list[dict[str, Any]]: ...
    @property
    def mentions(self) -> list[dict[str, Any]]: ...
    @property
    def tags(self) -> list[str]: ...


class CommentState(Protocol):
    """What a comment's record tells (a ``Comment``, or a row of ``COMMENT_COLUMNS``)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def post_id(self) -> uuid.UUID: ...
    @property
    def parent_id(self) -> uuid.UUID | None: ...
    @property
    def author_id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def deleted_at(self) -> datetime | None: ...
    @property
    def moderation(self) -> str | None: ...


class CommentText(CommentState, Protocol):
    @property
    def body(self) -> str: ...
    @property
    def lang(self) -> str | None: ...
    @property
    def mentions(self) -> list[dict[str, Any]]: ...


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _mentioned(mentions: Sequence[dict[str, Any]] | None) -> list[str]:
    """Mentions as stored name the persona and its handle then; the record keeps the persona."""
    return [str(m["id"]) for m in mentions or []]


def post_record(post: PostState, change: PostChange, at: datetime) -> RecordEvent:
    """``internal.records.post`` of a change that leaves the post's text as it was (a deletion,
    a moderation change)."""
    data: dict[str, object] = {
        "id": str(post.id),
        "author_id": str(post.author_id),
        "context": post.context,
        "audience": post.audience,
        "group_id": _id(post.group_id),
        "created_at": post.created_at.isoformat(),
        "change": change,
        "at": at.isoformat(),
        "deleted_at": _time(post.deleted_at),
        "moderation": post.moderation,
    }
    return "internal.records.post", str(post.id), data


def post_text_record(post: PostText, change: PostChange, at: datetime) -> RecordEvent:
    """``internal.records.post`` with the post's text: at creation and whenever it changed."""
    event_type, subject, data = post_record(post, change, at)
    data |= {
        "body": post.body,
        "lang": post.lang,
        "links": [dict(link) for link in post.links or []],
        "mentions": _mentioned(post.mentions),
        "tags": list(post.tags or []),
    }
    return event_type, subject, data


def comment_record(
    comment: CommentState, post: PostScope, change: CommentChange, at: datetime
) -> RecordEvent:
    """``internal.records.comment`` of a change that leaves the comment's text as it was."""
    data: dict[str, object] = {
        "id": str(comment.id),
        "post_id": str(comment.post_id),
        "parent_id": _id(comment.parent_id),
        "author_id": str(comment.author_id),
        "context": post.context,
        "group_id": _id(post.group_id),
        "created_at": comment.created_at.isoformat(),
        "change": change,
        "at": at.isoformat(),
        "deleted_at": _time(comment.deleted_at),
        "moderation": comment.moderation,
    }
    return "internal.records.comment", str(comment.id), data


def comment_text_record(
    comment: CommentText, post: PostScope, change: CommentChange, at: datetime
) -> RecordEvent:
    """``internal.records.comment`` with the comment's text: at creation and whenever it
    changed."""
    event_type, subject, data = comment_record(comment, post, change, at)
    data |= {"body": comment.body, "lang": comment.lang, "mentions": _mentioned(comment.mentions)}
    return event_type, subject, data


def reaction_record(
    post: PostScope, persona_id: uuid.UUID, kind: str, change: ReactionChange, at: datetime
) -> RecordEvent:
    """``internal.records.reaction``: ``persona_id`` added or took back its ``kind`` on
    ``post``."""
    data: dict[str, object] = {
        "post_id": str(post.id),
        "persona_id": str(persona_id),
        "kind": kind,
        "context": post.context,
        "group_id": _id(post.group_id),
        "change": change,
        "at": at.isoformat(),
    }
    return "internal.records.reaction", str(post.id), data


async def scopes(session: AsyncSession, post_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Where each of ``post_ids`` is (rows of ``PostScope``'s columns), read in batches; a post
    that is gone is left out."""
    ids = list(dict.fromkeys(post_ids))
    found: dict[uuid.UUID, Any] = {}
    for start in range(0, len(ids), BATCH):
        rows = await session.execute(
            select(col(Post.id), col(Post.context), col(Post.group_id)).where(
                col(Post.id).in_(ids[start : start + BATCH])
            )
        )
        found.update((row.id, row) for row in rows)
    return found


async def publish_erased(
    session: AsyncSession,
    outbox: Outbox,
    persona_id: uuid.UUID,
    comments: Sequence[Any],
    reactions: Sequence[Any],
    now: datetime,
) -> None:
    """The records of what a persona's erasure took besides its posts (``deletion`` tells
    those): ``comments`` are rows of ``COMMENT_COLUMNS`` as erased, ``reactions`` rows of their
    ``post_id`` and ``kind`` as deleted. Their posts are read once, in batches."""
    posts = await scopes(session, [row.post_id for row in [*comments, *reactions]])
    events = [
        comment_record(row, posts[row.post_id], "deleted", now) for row in comments if row.post_id in posts
    ]
    events += [
        reaction_record(posts[row.post_id], persona_id, row.kind, "removed", now)
        for row in reactions
        if row.post_id in posts
    ]
    for start in range(0, len(events), BATCH):
        await outbox.publish_many(session, events[start : start + BATCH])
