"""Comments on posts, with one level of replies: which comments a reader sees, the reads of them,
and the flows that write them (comment, edit, delete), each the whole change in one transaction
and free of HTTP.

A reader sees a comment when they see its post (``timelines.visible_ids``: shown, and visible
to them), the comment is not deleted, moderation left it alone (its author still sees it
hidden or held) and its author is active (``comment_shown``; ``comments_of``). Every read of
comments starts from it, search included.

A post's ``comment_count`` and a comment's ``reply_count`` count the comments everyone sees
(``counted``): a comment held for review (its text holds one of moderation's terms, as for
posts: ``posting``) is not counted, and notifies nobody, until a moderator releases it; a
comment moderation hides or removes is taken off the counts, and its notifications deleted
(``services.feed.moderation``). A locked post takes no new comments.

Every change of a comment also tells records (``records``), with its public event in one
``publish_many``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Uuid, and_, bindparam, delete, or_, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.principal import Principal
from kit.errors import Forbidden, NotFound, Unprocessable
from kit.idempotency import Created
from kit.ids import new_id
from kit.outbox import Outbox, Then
from kit.pagination import decode_id_cursor
from kit.timeutil import utcnow
from services.feed import idempotency, records
from services.feed.access import ensure_writable, may_moderate, visible_post
from services.feed.content import (
    edited_language,
    held_by,
    hold,
    resolve_mentions,
    terms_at,
    terms_of,
    text_language,
    written_by,
)
from services.feed.disclosure import comment_content
from services.feed.listing import Listing, by_id
from services.feed.models import Comment, Notification, PersonaReplica, Post
from services.feed.notifications import mention_ids, notify
from services.feed.records import PostScope
from services.feed.schemas import CommentCreate, CommentPublic, CommentUpdate, comment_public
from services.feed.timelines import AUTHOR_ONLY, visible_ids

if TYPE_CHECKING:  # attachments reads comments as commenting.find does
    from services.feed.attachments import Attaching


def comment_shown(reader: Principal, author: Any = PersonaReplica) -> Any:
    """What a reader sees of the comments of a post they see: those not deleted, that
    moderation left alone (but the reader's own hidden and held ones), by authors still active.
    A condition on ``Comment`` joined to its author's replica, ``author`` (``PersonaReplica``
    or an alias of it)."""
    moderation_allows = or_(
        col(Comment.moderation).is_(None),
        and_(col(Comment.moderation).in_(AUTHOR_ONLY), col(Comment.author_id) == reader.persona_id),
    )
    active = or_(author.status.is_(None), author.status == "active")
    return and_(col(Comment.deleted_at).is_(None), moderation_allows, active)


def comments_of(reader: Principal, post_id: uuid.UUID) -> Any:
    """The comments of post ``post_id`` that ``reader`` sees, with their authors' names (rows
    for ``schemas.comment_public``): none unless the reader sees the post; then those
    ``comment_shown``."""
    post_seen = visible_ids(reader).where(col(Post.id) == post_id).exists()
    return (
        select(Comment, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == col(Comment.author_id), isouter=True)
        .where(col(Comment.post_id) == post_id, post_seen, comment_shown(reader))
    )


def counted(comment: Comment) -> bool:
    """Whether ``comment`` counts in its post's ``comment_count`` and its parent's
    ``reply_count``: everyone who sees the post sees it."""
    return comment.deleted_at is None and comment.moderation is None


# Built once (as ``access``'s checks are): every comment runs one or both.
_CHANGE: Any = bindparam("change", type_=Integer())
_RECOUNT_POST_SQL = "UPDATE post SET comment_count = comment_count + :change WHERE id = :row"
_RECOUNT_TYPES: dict[str, Any] = {"row": Uuid(), "change": Integer()}
_RECOUNT_POST = text(_RECOUNT_POST_SQL).bindparams(
    *(bindparam(n, type_=t) for n, t in _RECOUNT_TYPES.items())
)
_RECOUNT_PARENT = (
    update(Comment)
    .where(col(Comment.id) == bindparam("row", type_=Uuid()))
    .values(reply_count=Comment.reply_count + _CHANGE)
)


async def recount(session: AsyncSession, comment: Comment, change: int, *, post: bool = True) -> None:
    """Adds ``change`` to the counts ``comment`` is counted in: its parent's, and its post's
    unless ``post`` is False (the caller runs ``recounting`` with its events)."""
    if change == 0:
        return
    if comment.parent_id is not None:
        await session.execute(_RECOUNT_PARENT, {"row": comment.parent_id, "change": change})
    if post:
        await session.execute(_RECOUNT_POST, recounting(comment, change).params)


def recounting(comment: Comment, change: int) -> Then:
    """The post's part of ``recount`` as the ``Then`` of an outbox write: the comment's events
    and its post's count in one statement on PostgreSQL (decision 0054)."""
    return Then(_RECOUNT_POST_SQL, {"row": comment.post_id, "change": change}, _RECOUNT_TYPES)


def notice_targets(
    post: Post, parent: Comment | None, mentions: list[dict[str, Any]]
) -> dict[uuid.UUID, str]:
    """Who hears of a comment, and as what: the parent comment's author of a reply, the post's
    author of a comment, mentioned personas of their mention (``notify`` keeps those who see
    the post, the commenter aside)."""
    targets: dict[uuid.UUID, str] = {}
    if parent is not None:
        targets[parent.author_id] = "reply"
    targets.setdefault(post.author_id, "comment")
    for mentioned in mention_ids(mentions):
        targets.setdefault(mentioned, "mention")
    return targets


def comment_deleted_event(comment_id: uuid.UUID, post: PostScope, now: datetime) -> dict[str, object]:
    """What other services learn of a comment's deletion, whoever deleted it; its context lets
    a webhook endpoint of that context have it."""
    return {
        "id": str(comment_id),
        "post_id": str(post.id),
        "context": post.context,
        "group_id": str(post.group_id) if post.group_id else None,
        "deleted_at": now.isoformat(),
    }


def comment_event(comment: Comment, post: Post, content: dict[str, Any] | None) -> dict[str, object]:
    """What other services and webhook subscribers learn of a comment
    (``domain.catalogue.CommentData``): its text only as ``content``, where
    ``disclosure.comment_content`` lets it be told. Its post's author and time are for groups'
    health alone; subscribers do not receive them."""
    return {
        "id": str(comment.id),
        "post_id": str(post.id),
        "parent_id": str(comment.parent_id) if comment.parent_id else None,
        "author_id": str(comment.author_id),
        "context": post.context,
        "group_id": str(post.group_id) if post.group_id else None,
        "post_author_id": str(post.author_id),
        "post_created_at": post.created_at.isoformat(),
        "created_at": comment.created_at.isoformat(),
        "content": content,
    }


async def visible_comment(
    session: AsyncSession, reader: Principal, post_id: uuid.UUID, comment_id: uuid.UUID
) -> Any:
    """The comment of ``post_id`` as a ``comments_of`` row, or 404."""
    row = (await session.execute(comments_of(reader, post_id).where(col(Comment.id) == comment_id))).first()
    if row is None:
        raise NotFound("No comment with this id.")
    return row


async def find(session: AsyncSession, reader: Principal, post_id: uuid.UUID, comment_id: uuid.UUID) -> Any:
    """One comment, as a ``comments_of`` row; a post or comment the reader does not see is a
    404 (the post's first)."""
    await visible_post(session, reader, post_id)
    return await visible_comment(session, reader, post_id, comment_id)


# No post has this id (ids are time-ordered UUIDv7, never nil).
_NOBODY = uuid.UUID(int=0)


async def find_by_id(session: AsyncSession, reader: Principal, comment_id: uuid.UUID) -> Any:
    """``find`` for a comment named by its id alone (another service's question): its post is
    read from it, and a missing one goes the same way, with no post, to the same 404."""
    post_id = await session.scalar(select(Comment.post_id).where(col(Comment.id) == comment_id))
    return await find(session, reader, post_id or _NOBODY, comment_id)


async def comments(
    session: AsyncSession,
    reader: Principal,
    post_id: uuid.UUID,
    parent_id: uuid.UUID | None,
    *,
    cursor: str | None,
    limit: int,
) -> Listing[Any]:
    """A post's top-level comments, or with ``parent_id`` that comment's replies, oldest
    first."""
    await visible_post(session, reader, post_id)
    scope = f"comments:{post_id}:{parent_id or ''}"
    after = decode_id_cursor(scope, cursor)
    query = comments_of(reader, post_id)
    if parent_id is None:
        query = query.where(col(Comment.parent_id).is_(None))
    else:
        await visible_comment(session, reader, post_id, parent_id)
        query = query.where(col(Comment.parent_id) == parent_id)
    if after is not None:
        query = query.where(col(Comment.id) > after)
    rows = (await session.execute(query.order_by(col(Comment.id)).limit(limit + 1))).all()
    return Listing(scope, rows, by_id)


async def comment(
    session: AsyncSession,
    outbox: Outbox,
    author: Principal,
    post_id: uuid.UUID,
    body: CommentCreate,
    attaching: Attaching,
) -> Created[CommentPublic]:
    """A comment (or a reply to a top-level comment) by ``author``, its file attached at media
    after the checks and before any write (``attachments``): the post's author hears of it, a
    parent comment's author of the reply, mentioned personas of their mention (each only if
    they can see the post); or, when its text holds a term, it is held (module docstring). The
    caller commits (kit.idempotency commits it with the stored answer), within ``attaching``,
    which undoes the attachment if that fails."""
    assert author.persona_id is not None and author.context is not None
    # With what the comment's event may tell of the post: no question after the insert.
    row = await visible_post(session, author, post_id, disclosed=True, written=True)
    post: Post = row[0]
    await ensure_writable(session, post)
    if post.locked_at is not None:
        raise Forbidden("A moderator locked the post: it takes no new comments.", slug="post-locked")
    parent: Comment | None = None
    if body.parent_id is not None:
        parent = (await visible_comment(session, author, post_id, body.parent_id))[0]
        if parent.parent_id is not None:
            raise Unprocessable("Replies go one level deep: reply to the top-level comment.")
    mentions = await resolve_mentions(session, body.body, author.context, author.persona_id)
    writing = written_by(row)  # read with the post
    comment_id = new_id()
    media = await attaching.attach(
        "comment", comment_id, author.persona_id, body.media_ids, post_id=post.id, group_id=post.group_id
    )
    made = Comment(
        id=comment_id,
        media=media,
        post_id=post.id,
        parent_id=body.parent_id,
        author_id=author.persona_id,
        body=body.body,
        lang=text_language(body.lang, body.body),
        mentions=mentions,
    )
    session.add(made)
    held = held_by(made.body, await terms_at(session, post.context, writing.terms_version))
    events = []
    if held:
        await hold(session, outbox, made, post, held, made.created_at)
    else:
        targets = notice_targets(post, parent, mentions)
        await notify(session, post, author.persona_id, targets, comment_id=made.id)
        content = await comment_content(session, made, post, seen=row.seen_by_stranger, writer=writing)
        events.append(("comment.created", str(post.id), comment_event(made, post, content)))
    events.append(records.comment_text_record(made, post, "created", made.created_at))
    counting = None
    if not held:
        await recount(session, made, 1, post=False)
        counting = recounting(made, 1)
    # The post's count last before the commit, in the statement of the events: from its update
    # on, the post's row is locked until the transaction ends, and every other comment on the
    # post waits for it.
    await outbox.publish_many(session, events, then=counting)
    result = comment_public(made, writing.handle, writing.display_name)
    location = f"/api/v1/posts/{post.id}/comments/{made.id}"
    return Created(result, location, columns={"resource_id": made.id})


async def edit(
    session: AsyncSession,
    outbox: Outbox,
    caller: Principal,
    post_id: uuid.UUID,
    comment_id: uuid.UUID,
    body: CommentUpdate,
) -> CommentPublic:
    """The author edits the text (and its language); newly mentioned personas hear of it. When
    the new text of a comment moderation left alone holds a term, the comment is held instead,
    as a new one would be: taken off the counts, its notifications deleted, told again at its
    release. Commits."""
    assert caller.context is not None and caller.persona_id is not None
    post: Post = (await visible_post(session, caller, post_id))[0]
    found, handle, display_name = await visible_comment(session, caller, post_id, comment_id)
    if found.author_id != caller.persona_id:
        raise Forbidden("Only the author edits a comment.")
    await ensure_writable(session, post)
    lang = edited_language(body.model_fields_set, body.lang, body.body, found.lang)
    if body.body == found.body and lang != found.lang:  # the language alone
        found.lang = lang
        await outbox.publish(session, *records.comment_text_record(found, post, "edited", utcnow()))
        await session.commit()
    elif body.body != found.body:
        found.lang = lang
        before = {m["id"] for m in found.mentions or []}
        found.body = body.body
        found.mentions = await resolve_mentions(session, body.body, caller.context, caller.persona_id)
        now = utcnow()
        found.edited_at = found.updated_at = now
        held = held_by(found.body, await terms_of(session, post.context)) if counted(found) else []
        if held:
            await recount(session, found, -1)
            await session.execute(delete(Notification).where(col(Notification.comment_id) == found.id))
            await hold(session, outbox, found, post, held, now)
        elif counted(found):  # a hidden or held comment names nobody in a notification
            new = [m for m in found.mentions if m["id"] not in before]
            await notify(
                session,
                post,
                caller.persona_id,
                dict.fromkeys(mention_ids(new), "mention"),
                comment_id=found.id,
            )
        await outbox.publish(session, *records.comment_text_record(found, post, "edited", now))
        await session.commit()
    return comment_public(found, handle, display_name)


async def remove(
    session: AsyncSession, outbox: Outbox, caller: Principal, post_id: uuid.UUID, comment_id: uuid.UUID
) -> None:
    """The author, a moderator or owner of the post's group, or staff deletes a comment; a
    top-level comment takes its replies with it. Commits."""
    post: Post = (await visible_post(session, caller, post_id))[0]
    found: Comment = (await visible_comment(session, caller, post_id, comment_id))[0]
    if found.author_id != caller.persona_id and not await may_moderate(session, caller, post):
        raise Forbidden("Only the author or a moderator deletes a comment.")
    now = utcnow()
    removed = [found]
    if found.parent_id is None:
        removed += (
            await session.scalars(
                select(Comment).where(col(Comment.parent_id) == found.id, col(Comment.deleted_at).is_(None))
            )
        ).all()
    elif counted(found):
        await session.execute(
            update(Comment)
            .where(col(Comment.id) == found.parent_id)
            .values(reply_count=Comment.reply_count - 1)
        )
    lowered = sum(1 for gone in removed if counted(gone))
    events = []
    for gone in removed:
        gone.deleted_at = now
        gone.body = ""
        gone.mentions = []
        gone.media = []
        events += [
            ("comment.deleted", str(post.id), comment_deleted_event(gone.id, post, now)),
            records.comment_record(gone, post, "deleted", now),
        ]
    await outbox.publish_many(session, events)
    ids = [gone.id for gone in removed]
    await session.execute(delete(Notification).where(col(Notification.comment_id).in_(ids)))
    await idempotency.forget(session, ids)
    await session.execute(
        update(Post).where(col(Post.id) == post.id).values(comment_count=Post.comment_count - lowered)
    )
    await session.commit()
