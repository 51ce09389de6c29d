"""Posts: publish, read, search, edit with history, delete, pin."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.db import SessionDep
from kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from kit.outbox import Outbox, OutboxDep
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from kit.text import LIKE_ESCAPE, SingleLineText, like_escape
from kit.timeutil import utcnow
from kit.tokens import CurrentPersona
from services.feed import idempotency, inbox
from services.feed.access import can_announce, ensure_writable, may_moderate, visible_post
from services.feed.content import parse_tags, resolve_mentions
from services.feed.deletion import publish_deleted
from services.feed.models import (
    GroupReplica,
    MembershipReplica,
    Notification,
    PersonaReplica,
    Post,
    PostRevision,
    PostTag,
)
from services.feed.notifications import mention_ids, notify
from services.feed.schemas import (
    LinkIn,
    LinkPublic,
    PostCreate,
    PostPublic,
    PostUpdate,
    RevisionPublic,
)
from services.feed.timelines import page_of_posts, post_public, visible_to

router = APIRouter(prefix="/api/v1/posts", tags=["posts"])


def post_event(post: Post) -> dict[str, object]:
    """What other services learn of a post: never its text."""
    return {
        "id": str(post.id),
        "author_id": str(post.author_id),
        "context": post.context,
        "audience": post.audience,
        "group_id": str(post.group_id) if post.group_id else None,
        "created_at": post.created_at.isoformat(),
    }


def _links(links: list[LinkIn]) -> list[dict[str, Any]]:
    return [link.model_dump() for link in links]


async def _set_text(
    session: AsyncSession, post: Post, body: str, *, new: bool = False
) -> list[dict[str, Any]]:
    """Parses mentions and tags from the body; returns the mentions that are new."""
    before = {m["id"] for m in post.mentions or []}
    post.body = body
    post.mentions = await resolve_mentions(session, body, post.context, post.author_id)
    tags = parse_tags(body)
    if tags != list(post.tags or []):
        # A new post has no tag rows. An edit deletes whatever rows there are, not those its
        # copy of the post names: an edit committed meanwhile may have written others.
        if not new:
            await session.execute(delete(PostTag).where(col(PostTag.post_id) == post.id))
        session.add_all(PostTag(post_id=post.id, tag=tag, context=post.context) for tag in tags)
    post.tags = tags
    return [m for m in post.mentions if m["id"] not in before]


async def _check_group(session: AsyncSession, caller: CurrentPersona, group_id: uuid.UUID) -> None:
    assert caller.persona_id is not None
    # Shared until the post commits, so that the group's deletion (events.on_group_deleted)
    # waits for the post and removes it too.
    group = await session.get(GroupReplica, group_id, with_for_update={"read": True})
    member = await session.get(MembershipReplica, (caller.persona_id, group_id))
    if group is None or group.context != caller.context or (group.visibility != "open" and member is None):
        raise NotFound("No group with this id.")
    if member is None:
        raise Forbidden("Only members post to a group.")
    if group.archived:
        raise Forbidden("The group is archived and read-only.", slug="group-archived")


def _check_pin_time(pinned_until: datetime) -> None:
    if pinned_until <= utcnow():
        raise Unprocessable(
            "pinned_until must be in the future.",
            errors=[{"location": "body.pinned_until", "message": "must be in the future", "code": "past"}],
        )


@router.post(
    "",
    status_code=201,
    summary="Publish a post",
    response_model=PostPublic,
    responses={
        404: {"description": "The group does not exist in the caller's context"},
        403: {"description": "Not a member of the group, the group is archived, or not allowed to announce"},
        409: {"description": "A request with the same Idempotency-Key is still running"},
    },
)
async def create_post(
    body: PostCreate,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
    response: Response,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
) -> PostPublic | Response:
    """The author is the token's persona and the context the token's context. Mentions
    (`@handle`) and tags (`#tag`) are parsed from the body; an `Idempotency-Key` makes a retry
    safe."""
    assert caller.persona_id is not None and caller.context is not None
    print_ = idempotency.fingerprint("create_post", body)
    replayed = await idempotency.replay(session, caller.persona_id, idempotency_key, print_)
    if replayed is not None:
        return replayed
    if body.group_id is not None:
        await _check_group(session, caller, body.group_id)
    if body.pinned_until is not None:
        if not can_announce(caller):
            raise Forbidden("Only administrators and communications post announcements.")
        _check_pin_time(body.pinned_until)
    post = Post(
        author_id=caller.persona_id,
        context=caller.context,
        audience=body.audience,
        group_id=body.group_id,
        body="",
        links=_links(body.links),
        pinned_until=body.pinned_until,
    )
    new_mentions = await _set_text(session, post, body.body, new=True)
    session.add(post)
    await notify(session, post, caller.persona_id, dict.fromkeys(mention_ids(new_mentions), "mention"))
    await outbox.publish(session, "post.created", str(post.id), post_event(post))
    await inbox.fan_out(session, post)
    result = await _render(session, post)
    location = f"/api/v1/posts/{post.id}"
    idempotency.remember(session, caller.persona_id, idempotency_key, print_, 201, result, location, post.id)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return await idempotency.replay_after_race(session, caller.persona_id, idempotency_key, print_)
    response.headers["Location"] = location
    return result


async def _render(session: AsyncSession, post: Post) -> PostPublic:
    author = await session.get(PersonaReplica, post.author_id)
    return post_public((post, author.handle if author else None, author.display_name if author else None, 0))


@router.get("", summary="Search posts the caller can see")
async def search_posts(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    q: Annotated[
        str,
        Query(min_length=2, max_length=100, description="Words to find, matched literally"),
        SingleLineText,
    ],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[PostPublic]:
    """Newest first, under the same rules as every timeline: the caller's context only, and
    nothing from a group the caller cannot read."""
    term = q.strip()
    if len(term) < 2:
        raise Unprocessable(
            "The search needs at least two characters.",
            errors=[{"location": "query.q", "message": "too short", "code": "string_too_short"}],
        )
    digest = hashlib.sha256(term.lower().encode()).hexdigest()[:16]
    scope = f"search:{caller.persona_id}:{digest}"
    before = decode_id_cursor(scope, cursor)
    condition = visible_to(caller) & func.lower(col(Post.body)).like(
        f"%{like_escape(term)}%", escape=LIKE_ESCAPE
    )
    rows, _ = await page_of_posts(session, caller, condition, before=before, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r[0].id)])
    now = utcnow()
    return Page[PostPublic](items=[post_public(r, now) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{post_id}", summary="A post")
async def get_post(post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona) -> PostPublic:
    return post_public(await visible_post(session, caller, post_id))


@router.patch(
    "/{post_id}",
    summary="Edit a post",
    responses={
        403: {"description": "Not the author (or, for pinned_until, not allowed to announce)"},
        409: {"description": "pinned_until on a post that is not to the organisation"},
    },
)
async def update_post(
    post_id: uuid.UUID, body: PostUpdate, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep
) -> PostPublic:
    """The author edits the text and links; each edit keeps the text it replaced in the
    history. Administrators and communications set or clear an announcement's `pinned_until`
    (send `null` to unpin)."""
    row = await visible_post(session, caller, post_id)
    post: Post = row[0]
    fields = body.model_fields_set
    if not fields:
        return post_public((post, row[1], row[2], row[3]))  # nothing to change: as it is
    # Overlapping edits of one post take turns: each reads the post as the one before left it
    # (its history, its tag rows), not as it was when both began.
    await session.refresh(post, with_for_update=True)
    await ensure_writable(session, post)
    now = utcnow()
    if "pinned_until" in fields:
        if not can_announce(caller):
            raise Forbidden("Only administrators and communications pin announcements.")
        if post.audience != "organisation":
            raise Conflict("Only posts to the organisation are announcements.")
        if body.pinned_until is not None:
            _check_pin_time(body.pinned_until)
        post.pinned_until = body.pinned_until
    text_fields = fields & {"body", "links"}
    if text_fields:
        if post.author_id != caller.persona_id:
            raise Forbidden("Only the author edits a post.")
        new_body = body.body if body.body is not None else post.body
        new_links = _links(body.links) if body.links is not None else list(post.links or [])
        if new_body != post.body or new_links != list(post.links or []):
            session.add(
                PostRevision(post_id=post.id, body=post.body, links=list(post.links or []), created_at=now)
            )
            assert caller.persona_id is not None
            new_mentions = await _set_text(session, post, new_body)
            post.links = new_links
            post.edited_at = now
            await notify(
                session, post, caller.persona_id, dict.fromkeys(mention_ids(new_mentions), "mention")
            )
    post.updated_at = now
    await outbox.publish(
        session, "post.updated", str(post.id), {**post_event(post), "updated_at": now.isoformat()}
    )
    await session.commit()
    return post_public((post, row[1], row[2], row[3]), now)


@router.get("/{post_id}/history", summary="Earlier texts of an edited post")
async def list_post_history(
    post_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[RevisionPublic]:
    """Newest edit first; visible to whoever can see the post."""
    await visible_post(session, caller, post_id)
    scope = f"history:{post_id}"
    before = decode_id_cursor(scope, cursor)
    query = select(PostRevision).where(col(PostRevision.post_id) == post_id)
    if before is not None:
        query = query.where(col(PostRevision.id) < before)
    rows = (await session.scalars(query.order_by(col(PostRevision.id).desc()).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r.id)])
    return Page[RevisionPublic](
        items=[
            RevisionPublic(
                id=r.id,
                body=r.body,
                links=[LinkPublic(url=link["url"], title=link.get("title")) for link in r.links or []],
                replaced_at=r.created_at,
            )
            for r in page.items
        ],
        next_cursor=page.next_cursor,
    )


async def erase_post(session: AsyncSession, outbox: Outbox, post: Post) -> None:
    """Deleting keeps a tombstone row (ids stay unique, events stay ordered) but no text."""
    now = utcnow()
    post.deleted_at = now
    post.body = ""
    post.mentions = []
    post.links = []
    post.tags = []
    post.pinned_until = None
    post.group_pinned_at = None
    await session.execute(delete(PostTag).where(col(PostTag.post_id) == post.id))
    await session.execute(delete(PostRevision).where(col(PostRevision.post_id) == post.id))
    await session.execute(delete(Notification).where(col(Notification.post_id) == post.id))
    await publish_deleted(session, outbox, [post], now)


@router.delete(
    "/{post_id}",
    status_code=204,
    summary="Delete a post",
    responses={403: {"description": "Not the author, a moderator of the post's group, or staff"}},
)
async def delete_post(
    post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep
) -> None:
    """Removed from every timeline at once. The author may delete, and so may a moderator or
    owner of the post's group, and a moderator or administrator."""
    post: Post = (await visible_post(session, caller, post_id))[0]
    if post.author_id != caller.persona_id and not await may_moderate(session, caller, post):
        raise Forbidden("Only the author or a moderator deletes a post.")
    await erase_post(session, outbox, post)
    await session.commit()


async def _group_owner_post(session: AsyncSession, caller: CurrentPersona, post_id: uuid.UUID) -> Post:
    post: Post = (await visible_post(session, caller, post_id))[0]
    if post.group_id is None:
        raise Conflict("Only group posts are pinned in a group; announcements use pinned_until.")
    assert caller.persona_id is not None
    membership = await session.get(MembershipReplica, (caller.persona_id, post.group_id))
    if membership is None or membership.role != "owner":
        raise Forbidden("Only the group's owners pin its posts.")
    await ensure_writable(session, post)
    return post


PIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not an owner of the post's group"},
    409: {"description": "Not a group post"},
}


@router.put("/{post_id}/pin", summary="Pin a post in its group (group owners)", responses=PIN_RESPONSES)
async def pin_post(post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona) -> PostPublic:
    """Pinned posts lead the group's timeline, most recently pinned first."""
    post = await _group_owner_post(session, caller, post_id)
    if post.group_pinned_at is None:
        post.group_pinned_at = utcnow()
        await session.commit()
    return post_public(await visible_post(session, caller, post_id))


@router.delete("/{post_id}/pin", summary="Unpin a post in its group (group owners)", responses=PIN_RESPONSES)
async def unpin_post(post_id: uuid.UUID, session: SessionDep, caller: CurrentPersona) -> PostPublic:
    post = await _group_owner_post(session, caller, post_id)
    if post.group_pinned_at is not None:
        post.group_pinned_at = None
        await session.commit()
    return post_public(await visible_post(session, caller, post_id))
