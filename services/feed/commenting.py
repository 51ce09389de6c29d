"""Comments on posts, with one level of replies: which comments a reader sees, the reads of them,
and the flows that write them (comment, edit, delete), each the whole change in one transaction
and free of HTTP.

A reader sees a comment when they see its post (``timelines.visible_ids``: shown, and visible
to them), the comment is not deleted and its author is active (``comments_of``). Every read of
comments starts from it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.principal import Principal
from kit.errors import Forbidden, NotFound, Unprocessable
from kit.idempotency import Created
from kit.outbox import Outbox
from kit.pagination import decode_id_cursor
from kit.timeutil import utcnow
from services.feed import idempotency
from services.feed.access import ensure_writable, may_moderate, visible_post
from services.feed.content import resolve_mentions
from services.feed.listing import Listing, by_id
from services.feed.models import Comment, Notification, PersonaReplica, Post
from services.feed.notifications import mention_ids, notify
from services.feed.schemas import CommentCreate, CommentPublic, CommentUpdate, comment_public
from services.feed.timelines import ACTIVE_AUTHOR, visible_ids


def comments_of(reader: Principal, post_id: uuid.UUID) -> Any:
    """The comments of post ``post_id`` that ``reader`` sees, with their authors' names (rows
    for ``schemas.comment_public``): none unless the reader sees the post; then those not
    deleted, by authors still active."""
    post_seen = visible_ids(reader).where(col(Post.id) == post_id).exists()
    return (
        select(Comment, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == col(Comment.author_id), isouter=True)
        .where(col(Comment.post_id) == post_id, post_seen, col(Comment.deleted_at).is_(None), ACTIVE_AUTHOR)
    )


def comment_event(comment: Comment, post: Post) -> dict[str, object]:
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
    session: AsyncSession, outbox: Outbox, author: Principal, post_id: uuid.UUID, body: CommentCreate
) -> Created[CommentPublic]:
    """A comment (or a reply to a top-level comment) by ``author``: the post's author hears of
    it, a parent comment's author of the reply, mentioned personas of their mention (each only
    if they can see the post). The caller commits (kit.idempotency commits it with the stored
    answer)."""
    assert author.persona_id is not None and author.context is not None
    post: Post = (await visible_post(session, author, post_id))[0]
    await ensure_writable(session, post)
    targets: dict[uuid.UUID, str] = {}
    if body.parent_id is not None:
        parent: Comment = (await visible_comment(session, author, post_id, body.parent_id))[0]
        if parent.parent_id is not None:
            raise Unprocessable("Replies go one level deep: reply to the top-level comment.")
        targets[parent.author_id] = "reply"
        await session.execute(
            update(Comment).where(col(Comment.id) == parent.id).values(reply_count=Comment.reply_count + 1)
        )
    targets.setdefault(post.author_id, "comment")
    mentions = await resolve_mentions(session, body.body, author.context, author.persona_id)
    for mentioned in mention_ids(mentions):
        targets.setdefault(mentioned, "mention")
    made = Comment(
        post_id=post.id,
        parent_id=body.parent_id,
        author_id=author.persona_id,
        body=body.body,
        mentions=mentions,
    )
    session.add(made)
    await session.execute(
        update(Post).where(col(Post.id) == post.id).values(comment_count=Post.comment_count + 1)
    )
    await notify(session, post, author.persona_id, targets, comment_id=made.id)
    await outbox.publish(session, "comment.created", str(post.id), comment_event(made, post))
    persona = await session.get(PersonaReplica, author.persona_id)
    result = comment_public(
        made, persona.handle if persona else None, persona.display_name if persona else None
    )
    location = f"/api/v1/posts/{post.id}/comments/{made.id}"
    return Created(result, location, columns={"resource_id": made.id})


async def edit(
    session: AsyncSession, caller: Principal, post_id: uuid.UUID, comment_id: uuid.UUID, body: CommentUpdate
) -> CommentPublic:
    """The author edits the text; newly mentioned personas hear of it. Commits."""
    assert caller.context is not None and caller.persona_id is not None
    post: Post = (await visible_post(session, caller, post_id))[0]
    found, handle, display_name = await visible_comment(session, caller, post_id, comment_id)
    if found.author_id != caller.persona_id:
        raise Forbidden("Only the author edits a comment.")
    await ensure_writable(session, post)
    if body.body != found.body:
        before = {m["id"] for m in found.mentions or []}
        found.body = body.body
        found.mentions = await resolve_mentions(session, body.body, caller.context, caller.persona_id)
        found.edited_at = found.updated_at = utcnow()
        new = [m for m in found.mentions if m["id"] not in before]
        await notify(
            session,
            post,
            caller.persona_id,
            dict.fromkeys(mention_ids(new), "mention"),
            comment_id=found.id,
        )
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
    else:
        await session.execute(
            update(Comment)
            .where(col(Comment.id) == found.parent_id)
            .values(reply_count=Comment.reply_count - 1)
        )
    for gone in removed:
        gone.deleted_at = now
        gone.body = ""
        gone.mentions = []
        await outbox.publish(
            session,
            "comment.deleted",
            str(post.id),
            {
                "id": str(gone.id),
                "post_id": str(post.id),
                "group_id": str(post.group_id) if post.group_id else None,
                "deleted_at": now.isoformat(),
            },
        )
    ids = [gone.id for gone in removed]
    await session.execute(delete(Notification).where(col(Notification.comment_id).in_(ids)))
    await idempotency.forget(session, ids)
    await session.execute(
        update(Post).where(col(Post.id) == post.id).values(comment_count=Post.comment_count - len(removed))
    )
    await session.commit()
