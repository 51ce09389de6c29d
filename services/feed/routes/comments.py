"""Comments on posts, with one level of replies, oldest first."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.db import SessionDep
from kit.errors import Forbidden, NotFound, Unprocessable
from kit.outbox import OutboxDep
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from kit.timeutil import utcnow
from kit.tokens import CurrentPersona
from services.feed import idempotency
from services.feed.access import ensure_writable, may_moderate, visible_post
from services.feed.content import resolve_mentions
from services.feed.models import Comment, Notification, PersonaReplica, Post
from services.feed.notifications import mention_ids, notify
from services.feed.schemas import AuthorPublic, CommentCreate, CommentPublic, CommentUpdate, MentionPublic
from services.feed.timelines import ACTIVE_AUTHOR

router = APIRouter(prefix="/api/v1/posts/{post_id}/comments", tags=["comments"])


def comment_public(comment: Comment, handle: str | None, display_name: str | None) -> CommentPublic:
    return CommentPublic(
        id=comment.id,
        post_id=comment.post_id,
        parent_id=comment.parent_id,
        author=AuthorPublic(id=comment.author_id, handle=handle, display_name=display_name),
        body=comment.body,
        mentions=[MentionPublic(id=m["id"], handle=m["handle"]) for m in comment.mentions or []],
        reply_count=comment.reply_count,
        created_at=comment.created_at,
        updated_at=comment.updated_at,
        edited_at=comment.edited_at,
    )


def comments_with_authors() -> Any:
    return (
        select(Comment, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == col(Comment.author_id), isouter=True)
        .where(col(Comment.deleted_at).is_(None), ACTIVE_AUTHOR)
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


async def _visible_comment(session: AsyncSession, post_id: uuid.UUID, comment_id: uuid.UUID) -> Any:
    row = (
        await session.execute(
            comments_with_authors().where(col(Comment.id) == comment_id, col(Comment.post_id) == post_id)
        )
    ).first()
    if row is None:
        raise NotFound("No comment with this id.")
    return row


@router.get("", summary="Comments on a post, oldest first")
async def list_comments(
    post_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    parent_id: Annotated[
        uuid.UUID | None, Query(description="List the replies to this comment instead of the top level.")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[CommentPublic]:
    """Top-level comments by default, each with its `reply_count`; `parent_id` lists one
    comment's replies."""
    await visible_post(session, caller, post_id)
    scope = f"comments:{post_id}:{parent_id or ''}"
    after = decode_id_cursor(scope, cursor)
    query = comments_with_authors().where(col(Comment.post_id) == post_id)
    if parent_id is None:
        query = query.where(col(Comment.parent_id).is_(None))
    else:
        await _visible_comment(session, post_id, parent_id)
        query = query.where(col(Comment.parent_id) == parent_id)
    if after is not None:
        query = query.where(col(Comment.id) > after)
    rows = (await session.execute(query.order_by(col(Comment.id)).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r[0].id)])
    return Page[CommentPublic](items=[comment_public(*r) for r in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    status_code=201,
    summary="Comment on a post, or reply to a comment",
    response_model=CommentPublic,
    responses={403: {"description": "The post's group is archived"}},
)
async def create_comment(
    post_id: uuid.UUID,
    body: CommentCreate,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
    response: Response,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
) -> CommentPublic | Response:
    """The post's author hears of a comment, a comment's author of a reply, and mentioned
    personas of their mention (each only if they can see the post)."""
    assert caller.persona_id is not None and caller.context is not None
    print_ = idempotency.fingerprint(f"create_comment:{post_id}", body)
    replayed = await idempotency.replay(session, caller.persona_id, idempotency_key, print_)
    if replayed is not None:
        return replayed
    post: Post = (await visible_post(session, caller, post_id))[0]
    await ensure_writable(session, post)
    targets: dict[uuid.UUID, str] = {}
    if body.parent_id is not None:
        parent: Comment = (await _visible_comment(session, post_id, body.parent_id))[0]
        if parent.parent_id is not None:
            raise Unprocessable("Replies go one level deep: reply to the top-level comment.")
        targets[parent.author_id] = "reply"
        await session.execute(
            update(Comment).where(col(Comment.id) == parent.id).values(reply_count=Comment.reply_count + 1)
        )
    targets.setdefault(post.author_id, "comment")
    mentions = await resolve_mentions(session, body.body, caller.context, caller.persona_id)
    for persona in mention_ids(mentions):
        targets.setdefault(persona, "mention")
    comment = Comment(
        post_id=post.id,
        parent_id=body.parent_id,
        author_id=caller.persona_id,
        body=body.body,
        mentions=mentions,
    )
    session.add(comment)
    await session.execute(
        update(Post).where(col(Post.id) == post.id).values(comment_count=Post.comment_count + 1)
    )
    await notify(session, post, caller.persona_id, targets, comment_id=comment.id)
    await outbox.publish(session, "comment.created", str(post.id), comment_event(comment, post))
    author = await session.get(PersonaReplica, caller.persona_id)
    result = comment_public(
        comment, author.handle if author else None, author.display_name if author else None
    )
    location = f"/api/v1/posts/{post.id}/comments/{comment.id}"
    idempotency.remember(
        session, caller.persona_id, idempotency_key, print_, 201, result, location, comment.id
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return await idempotency.replay_after_race(session, caller.persona_id, idempotency_key, print_)
    response.headers["Location"] = location
    return result


@router.get("/{comment_id}", summary="One comment")
async def get_comment(
    post_id: uuid.UUID, comment_id: uuid.UUID, session: SessionDep, caller: CurrentPersona
) -> CommentPublic:
    await visible_post(session, caller, post_id)
    return comment_public(*(await _visible_comment(session, post_id, comment_id)))


@router.patch("/{comment_id}", summary="Edit a comment", responses={403: {"description": "Not the author"}})
async def update_comment(
    post_id: uuid.UUID,
    comment_id: uuid.UUID,
    body: CommentUpdate,
    session: SessionDep,
    caller: CurrentPersona,
) -> CommentPublic:
    assert caller.context is not None and caller.persona_id is not None
    post: Post = (await visible_post(session, caller, post_id))[0]
    comment, handle, display_name = await _visible_comment(session, post_id, comment_id)
    if comment.author_id != caller.persona_id:
        raise Forbidden("Only the author edits a comment.")
    await ensure_writable(session, post)
    if body.body != comment.body:
        before = {m["id"] for m in comment.mentions or []}
        comment.body = body.body
        comment.mentions = await resolve_mentions(session, body.body, caller.context, caller.persona_id)
        comment.edited_at = comment.updated_at = utcnow()
        new = [m for m in comment.mentions if m["id"] not in before]
        await notify(
            session,
            post,
            caller.persona_id,
            dict.fromkeys(mention_ids(new), "mention"),
            comment_id=comment.id,
        )
        await session.commit()
    return comment_public(comment, handle, display_name)


@router.delete(
    "/{comment_id}",
    status_code=204,
    summary="Delete a comment",
    responses={403: {"description": "Not the author, a moderator of the post's group, or staff"}},
)
async def delete_comment(
    post_id: uuid.UUID,
    comment_id: uuid.UUID,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
) -> None:
    """Deleting a top-level comment removes its replies from view with it."""
    post: Post = (await visible_post(session, caller, post_id))[0]
    comment: Comment = (await _visible_comment(session, post_id, comment_id))[0]
    if comment.author_id != caller.persona_id and not await may_moderate(session, caller, post):
        raise Forbidden("Only the author or a moderator deletes a comment.")
    now = utcnow()
    removed = [comment]
    if comment.parent_id is None:
        removed += (
            await session.scalars(
                select(Comment).where(col(Comment.parent_id) == comment.id, col(Comment.deleted_at).is_(None))
            )
        ).all()
    else:
        await session.execute(
            update(Comment)
            .where(col(Comment.id) == comment.parent_id)
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
