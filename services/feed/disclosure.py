"""What feed's public events (``post.*``, ``comment.*``) tell of a post's or a comment's content.

Webhook subscribers receive these events (``domain.catalogue``). They are integrators acting
for the organisation, not members of its groups nor followers of its people, so an event
carries the text, tags, links, files and author's handle only where every persona of the
context may read them: a live post of the professional context that the visibility rule shows
to a persona who follows no one and belongs to no group (``timelines.seen_by``: to the
organisation by an author who is not limited, or in an open group), and the comments on it.
Anything else (to followers, in a closed or secret group, held, of the personal context) goes
out as ids only, ``content`` null, so no subscriber reads there what the API would not show it
(docs/events.md, "Who sees what").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Uuid, bindparam
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.catalogue import CommentContent, PostContent, PostLink
from kit.ids import random_id
from services.feed.content import Writer
from services.feed.models import Comment, PersonaReplica, Post
from services.feed.timelines import seen_by

# Built once, as ``access``'s checks are. A persona no one knows (a random id) follows no one
# and is in no group: it reads what the whole context reads.
SEEN_BY_STRANGER = seen_by(bindparam("stranger", type_=Uuid()), bindparam("stranger_context")).label(
    "seen_by_stranger"
)
_SEEN_BY_STRANGER = select(SEEN_BY_STRANGER).where(col(Post.id) == bindparam("post", type_=Uuid()))


def stranger(context: str) -> dict[str, Any]:
    """The parameters of ``SEEN_BY_STRANGER`` for a post of ``context``: a statement that
    writes a new post (``posting``) or reads the post a comment is written on
    (``access.visible_post``) returns that column with it, instead of asking again after."""
    return {"stranger": random_id(), "stranger_context": context}


async def open_to_context(session: AsyncSession, post: Post, *, seen: bool | None = None) -> bool:
    """Whether every persona of the post's context may read it, the personal context never
    counting: the one visibility rule, asked for a persona no one knows. ``seen``: what
    ``SEEN_BY_STRANGER`` answered for the post, if a statement returned it already."""
    if post.context != "professional" or post.moderation is not None or post.deleted_at is not None:
        return False
    if seen is None:
        seen = await session.scalar(_SEEN_BY_STRANGER, {**stranger(post.context), "post": post.id})
    return bool(seen)


async def _handle(session: AsyncSession, persona_id: Any, writer: Writer | None = None) -> str | None:
    """The author's handle: ``writer``'s when the caller read it, else the replica's."""
    if writer is not None:
        return writer.handle or None
    author = await session.get(PersonaReplica, persona_id)
    return author.handle if author is not None and author.handle else None


def _media_ids(media: list[dict[str, Any]] | None) -> list[Any]:
    return [item["id"] for item in media or []]


async def post_content(
    session: AsyncSession, post: Post, *, seen: bool | None = None, writer: Writer | None = None
) -> dict[str, Any] | None:
    """The ``content`` of a post's event: ``PostContent``, or None where it may not be told
    (``seen``: as for ``open_to_context``; ``writer``: the post's author as already read,
    ``content.written_by``)."""
    handle = await _handle(session, post.author_id, writer)
    if handle is None or not await open_to_context(session, post, seen=seen):
        return None
    return PostContent(
        author_handle=handle,
        text=post.body,
        lang=post.lang,
        tags=list(post.tags or []),
        links=[PostLink(url=link["url"], title=link.get("title")) for link in post.links or []],
        media_ids=_media_ids(post.media),
    ).model_dump(mode="json")


async def comment_content(
    session: AsyncSession,
    comment: Comment,
    post: Post,
    *,
    seen: bool | None = None,
    writer: Writer | None = None,
) -> dict[str, Any] | None:
    """The ``content`` of a comment's event: ``CommentContent``, or None where it may not be
    told (``seen``: as for ``open_to_context``, of the post; ``writer``: the comment's author
    as already read, ``content.written_by``)."""
    if comment.moderation is not None or comment.deleted_at is not None:
        return None
    handle = await _handle(session, comment.author_id, writer)
    if handle is None or not await open_to_context(session, post, seen=seen):
        return None
    return CommentContent(
        author_handle=handle, text=comment.body, lang=comment.lang, media_ids=_media_ids(comment.media)
    ).model_dump(mode="json")
