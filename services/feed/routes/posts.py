"""Posts: create, read, delete."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from sqlmodel import col, select

from kit.db import SessionDep
from kit.errors import Forbidden, NotFound
from kit.outbox import OutboxDep
from kit.timeutil import utcnow
from kit.tokens import CurrentPersona
from services.feed.models import GroupReplica, MembershipReplica, PersonaReplica, Post
from services.feed.schemas import AuthorPublic, PostCreate, PostPublic
from services.feed.timelines import posts_with_authors, visible_to

router = APIRouter(prefix="/api/v1/posts", tags=["posts"])


def public(post: Post, handle: str | None, display_name: str | None) -> PostPublic:
    return PostPublic(
        id=post.id,
        author=AuthorPublic(id=post.author_id, handle=handle, display_name=display_name),
        context=post.context,
        audience=post.audience,
        group_id=post.group_id,
        body=post.body,
        created_at=post.created_at,
        updated_at=post.updated_at,
    )


def from_row(row: Any) -> PostPublic:
    post, handle, display_name = row
    return public(post, handle, display_name)


def post_event(post: Post) -> dict[str, object]:
    return {
        "id": str(post.id),
        "author_id": str(post.author_id),
        "context": post.context,
        "audience": post.audience,
        "group_id": str(post.group_id) if post.group_id else None,
        "created_at": post.created_at.isoformat(),
    }


@router.post(
    "",
    status_code=201,
    summary="Publish a post",
    responses={
        404: {"description": "The group does not exist in the caller's context"},
        403: {"description": "Not a member of the group, or the group is archived"},
    },
)
async def create_post(
    body: PostCreate, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep, response: Response
) -> PostPublic:
    """The author is the token's persona and the context the token's context."""
    assert caller.persona_id is not None and caller.context is not None
    if body.group_id is not None:
        group = await session.get(GroupReplica, body.group_id)
        member = await session.get(MembershipReplica, (caller.persona_id, body.group_id))
        if (
            group is None
            or group.context != caller.context
            or (group.visibility == "secret" and member is None)
        ):
            raise NotFound("No group with this id.")
        if member is None:
            raise Forbidden("Only members post to a group.")
        if group.archived:
            raise Forbidden("The group is archived and read-only.")
    post = Post(
        author_id=caller.persona_id,
        context=caller.context,
        audience=body.audience,
        group_id=body.group_id,
        body=body.body,
    )
    session.add(post)
    await session.flush()
    await outbox.publish(session, "post.created", str(post.id), post_event(post))
    await session.commit()
    author = await session.get(PersonaReplica, caller.persona_id)
    response.headers["Location"] = f"/api/v1/posts/{post.id}"
    return public(post, author.handle if author else None, author.display_name if author else None)


@router.get("/{post_id}", summary="A post")
async def get_post(post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona) -> PostPublic:
    row = (
        await session.execute(posts_with_authors().where(col(Post.id) == post_id, visible_to(caller)))
    ).first()
    if row is None:
        raise NotFound("No post with this id.")
    return from_row(row)


@router.delete(
    "/{post_id}",
    status_code=204,
    summary="Delete a post",
    responses={403: {"description": "Not the author"}},
)
async def delete_post(
    post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep
) -> None:
    """Deleted at once from every timeline. The author may delete, and so may a
    moderator or administrator."""
    post = await session.scalar(
        select(Post).where(col(Post.id) == post_id, visible_to(caller), col(Post.deleted_at).is_(None))
    )
    if post is None:
        raise NotFound("No post with this id.")
    if post.author_id != caller.persona_id and not (caller.has_role("moderator") or caller.has_role("admin")):
        raise Forbidden("Only the author or a moderator deletes a post.")
    post.deleted_at = utcnow()
    post.body = ""
    await outbox.publish(session, "post.deleted", str(post.id), {"id": str(post.id), "context": post.context})
    await session.commit()
