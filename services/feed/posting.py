"""Writing posts: publish, edit, delete and pin. Each flow is the whole change in one transaction
(checks, text with its mentions and tags, notifications, events, the home inboxes' fan-out) and
needs no HTTP: the caller is a ``Principal``, the answer a public schema. Each change of a
post's content also tells records (``records``: a pin is no change of it), with its public event
in one ``publish_many``.

A post whose text holds one of moderation's terms (``content.held_by``) is held for review
(decision 0032): saved ``held``, seen by its author alone, ``internal.content.held`` published
instead of ``post.created``, and its mentions told only when a moderator releases it
(``services.feed.moderation``). An edit whose new text holds a term holds the post too:
otherwise a term would pass by being added after publishing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ARRAY, String, Table, bindparam, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from kit.idempotency import Created
from kit.ids import new_id
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.feed import inbox, records
from services.feed.access import (
    can_announce,
    ensure_writable,
    group_member_and_writer,
    may_moderate,
    visible_post,
)
from services.feed.attachments import Attaching
from services.feed.content import (
    Writer,
    edited_language,
    held_by,
    held_since_written,
    hold,
    parse_tags,
    post_text,
    resolve_mentions,
    terms_at,
    terms_of,
    text_language,
    writer,
)
from services.feed.deletion import publish_deleted
from services.feed.disclosure import SEEN_BY_STRANGER, post_content, stranger
from services.feed.models import (
    MembershipReplica,
    Notification,
    Post,
    PostRevision,
    PostTag,
)
from services.feed.notifications import mention_ids, notify
from services.feed.schemas import LinkIn, PostCreate, PostPublic, PostUpdate, post_public

if TYPE_CHECKING:  # replicas applies groups' answers with events' handlers, and events imports this
    from services.feed.replicas import Groups


def post_event(post: Post, content: dict[str, Any] | None) -> dict[str, object]:
    """What other services and webhook subscribers learn of a post (``domain.catalogue.PostData``):
    its text only as ``content``, where ``disclosure.post_content`` lets it be told."""
    return {
        "id": str(post.id),
        "author_id": str(post.author_id),
        "context": post.context,
        "audience": post.audience,
        "group_id": str(post.group_id) if post.group_id else None,
        "created_at": post.created_at.isoformat(),
        "content": content,
    }


def _links(links: list[LinkIn]) -> list[dict[str, Any]]:
    return [link.model_dump() for link in links]


# A new post is written by these statements rather than by the session's flush: on PostgreSQL
# its row, its tag rows and the home inboxes' shared lock (``inbox.SHARED_LOCK``, which its
# fan-out needs) in one statement, which returns what its event may tell too
# (``disclosure.SEEN_BY_STRANGER``), where the flush and the question took four round trips
# (decision 0053). Built once, as every write's statements are (decision 0049).
_POSTS: Table = Post.__table__  # type: ignore[attr-defined]
_WRITTEN = [c for c in _POSTS.columns if c.computed is None]  # ``search`` PostgreSQL computes
_ID = bindparam("id", type_=_POSTS.c.id.type)
_CONTEXT = bindparam("context", type_=_POSTS.c.context.type)
_VALUES = [
    _ID if c is _POSTS.c.id else _CONTEXT if c is _POSTS.c.context else bindparam(c.name, type_=c.type)
    for c in _WRITTEN
]
_TAGS = insert(PostTag).from_select(
    ["post_id", "tag", "context"],
    select(_ID, func.unnest(bindparam("tag_names", type_=ARRAY(String))), _CONTEXT),
)
_INSERT_POST_LOCKED = (
    insert(_POSTS)
    .from_select([c.name for c in _WRITTEN], select(*_VALUES).select_from(inbox.SHARED_LOCK))
    .add_cte(_TAGS.cte("tags"))
    .returning(SEEN_BY_STRANGER)
)
_INSERT_POST = insert(_POSTS).returning(SEEN_BY_STRANGER)
_INSERT_TAGS = insert(PostTag)


async def _insert(session: AsyncSession, post: Post) -> bool:
    """Writes new ``post`` and its tag rows, and on PostgreSQL takes the inboxes' lock. Returns
    whether a persona of the context who follows no one and is in no group would see it."""
    params = {**{c.name: getattr(post, c.name) for c in _WRITTEN}, **stranger(post.context)}
    if session.get_bind().dialect.name == "postgresql":
        return bool(await session.scalar(_INSERT_POST_LOCKED, {**params, "tag_names": list(post.tags)}))
    seen = bool(await session.scalar(_INSERT_POST, params))
    if post.tags:
        await session.execute(
            _INSERT_TAGS, [{"post_id": post.id, "tag": t, "context": post.context} for t in post.tags]
        )
    return seen


async def _set_text(
    session: AsyncSession, post: Post, body: str, *, new: bool = False
) -> list[dict[str, Any]]:
    """Parses mentions and tags from the body; returns the mentions that are new. The tag rows
    of a new post are ``_insert``'s to write."""
    before = {m["id"] for m in post.mentions or []}
    post.body = body
    post.mentions = await resolve_mentions(session, body, post.context, post.author_id)
    tags = parse_tags(body)
    if tags != list(post.tags or []) and not new:
        # An edit deletes whatever rows there are, not those its copy of the post names: an
        # edit committed meanwhile may have written others.
        await session.execute(delete(PostTag).where(col(PostTag.post_id) == post.id))
        session.add_all(PostTag(post_id=post.id, tag=tag, context=post.context) for tag in tags)
    post.tags = tags
    return [m for m in post.mentions if m["id"] not in before]


async def _notify_mentions(
    session: AsyncSession, post: Post, author_id: uuid.UUID, mentions: list[dict[str, Any]]
) -> None:
    await notify(session, post, author_id, dict.fromkeys(mention_ids(mentions), "mention"))


async def _check_group(
    session: AsyncSession, author: Principal, group_id: uuid.UUID, groups: Groups | None
) -> Writer | None:
    """The author may post to the group, by feed's replicas; where they have not caught up
    with groups yet (a group just created, a member just let in), asked of groups once
    (``replicas``). Returns the writer, read with the group (decision 0054). The group's row
    stays shared until the post commits, so that the group's deletion
    (``events.on_group_deleted``) waits for the post and removes it too."""
    group, member, writing = await group_member_and_writer(session, author, group_id)
    if groups is not None and await groups.catch_up(
        session, author, group_id, group, member, members_only=True
    ):
        group, member, writing = await group_member_and_writer(session, author, group_id)
    if (
        group is None
        or group.context != author.context
        or group.moderation is not None
        or (group.visibility != "open" and member is None)
    ):
        raise NotFound("No group with this id.")
    if member is None:
        raise Forbidden("Only members post to a group.")
    if group.archived:
        raise Forbidden("The group is archived and read-only.", slug="group-archived")
    return writing


def _check_pin_time(pinned_until: datetime) -> None:
    if pinned_until <= utcnow():
        raise Unprocessable(
            "pinned_until must be in the future.",
            errors=[{"location": "body.pinned_until", "message": "must be in the future", "code": "past"}],
        )


def _render(post: Post, author: Writer) -> PostPublic:
    return post_public((post, author.handle, author.display_name, 0))


async def publish(
    session: AsyncSession,
    outbox: Outbox,
    author: Principal,
    body: PostCreate,
    attaching: Attaching,
    *,
    groups: Groups | None = None,
) -> Created[PostPublic]:
    """A new post by ``author`` in its context: checked, its files attached at media
    (``attachments``: after the checks, before any write), written with its tags, mentions
    notified, ``post.created`` published and fanned out to home inboxes; or, when its text
    holds a term, held (module docstring). The caller commits (kit.idempotency commits it with
    the stored answer), within ``attaching``, which undoes the attachments if that fails.
    ``groups``: where a group post's check asks groups when the replicas miss (without it,
    they alone decide)."""
    assert author.persona_id is not None and author.context is not None
    writing = None  # read with the group, for a group post
    if body.group_id is not None:
        writing = await _check_group(session, author, body.group_id, groups)
    if body.pinned_until is not None:
        if not can_announce(author):
            raise Forbidden("Only administrators and communications post announcements.")
        _check_pin_time(body.pinned_until)
    post_id = new_id()
    media = await attaching.attach("post", post_id, author.persona_id, body.media_ids, group_id=body.group_id)
    post = Post(
        id=post_id,
        media=media,
        author_id=author.persona_id,
        context=author.context,
        audience=body.audience,
        group_id=body.group_id,
        body="",
        lang=text_language(body.lang, body.body),
        links=_links(body.links),
        pinned_until=body.pinned_until,
    )
    new_mentions = await _set_text(session, post, body.body, new=True)
    if writing is None:
        writing = await writer(session, author.persona_id, author.context)
    terms = await terms_at(session, post.context, writing.terms_version)
    held = held_by(post_text(post.body, post.links), terms)
    events = []
    if held:
        await hold(session, outbox, post, post, held, post.created_at)
        await _insert(session, post)
    else:
        seen = await _insert(session, post)
        await _notify_mentions(session, post, author.persona_id, new_mentions)
        content = await post_content(session, post, seen=seen, writer=writing)
        events.append(("post.created", str(post.id), post_event(post, content)))
    events.append(records.post_text_record(post, "created", post.created_at))
    # Fanned out to the home inboxes in the statement of its events (decision 0054), a held
    # post too (as inboxes are built, ``inbox``): pages show it to its author alone until it
    # is released.
    await outbox.publish_many(session, events, then=inbox.fanning_out(session, post))
    result = _render(post, writing)
    return Created(result, f"/api/v1/posts/{post.id}", columns={"resource_id": post.id})


async def edit(
    session: AsyncSession, outbox: Outbox, caller: Principal, post_id: uuid.UUID, body: PostUpdate
) -> PostPublic:
    """The author edits the text and links, each edit keeping the text it replaced; announcers
    set or clear ``pinned_until``. Commits."""
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
        _repin(caller, post, body.pinned_until)
    edited = bool(fields & {"body", "links", "lang"}) and await _edit_text(
        session, outbox, caller, post, body, now
    )
    post.updated_at = now
    events = []
    if not (post.moderation == "held" and held_since_written(post)):  # else never announced yet
        data = post_event(post, await post_content(session, post))
        events.append(("post.updated", str(post.id), {**data, "updated_at": now.isoformat()}))
    if edited:  # a pin changes nothing of the record
        events.append(records.post_text_record(post, "edited", now))
    await outbox.publish_many(session, events)
    await session.commit()
    return post_public((post, row[1], row[2], row[3]), now)


def _repin(caller: Principal, post: Post, pinned_until: datetime | None) -> None:
    if not can_announce(caller):
        raise Forbidden("Only administrators and communications pin announcements.")
    if post.audience != "organisation":
        raise Conflict("Only posts to the organisation are announcements.")
    if pinned_until is not None:
        _check_pin_time(pinned_until)
    post.pinned_until = pinned_until


async def _edit_text(
    session: AsyncSession, outbox: Outbox, caller: Principal, post: Post, body: PostUpdate, now: datetime
) -> bool:
    """The new text, its revision, and its new mentions told; or, when the new text of a post
    moderation left alone holds a term, the post held and the mentions kept for the release.
    A post already hidden or held stays as it is. A new language alone changes the language.
    False when the text and its language are the same."""
    if post.author_id != caller.persona_id:
        raise Forbidden("Only the author edits a post.")
    new_body = body.body if body.body is not None else post.body
    new_links = _links(body.links) if body.links is not None else list(post.links or [])
    new_lang = edited_language(body.model_fields_set, body.lang, new_body, post.lang)
    if new_body == post.body and new_links == list(post.links or []):
        if new_lang == post.lang:
            return False
        post.lang = new_lang
        return True
    post.lang = new_lang
    session.add(PostRevision(post_id=post.id, body=post.body, links=list(post.links or []), created_at=now))
    assert caller.persona_id is not None
    new_mentions = await _set_text(session, post, new_body)
    post.links = new_links
    post.edited_at = now
    if post.moderation is None:
        held = held_by(post_text(post.body, post.links), await terms_of(session, post.context))
        if held:
            await hold(session, outbox, post, post, held, now)
    if post.moderation != "held":
        await _notify_mentions(session, post, caller.persona_id, new_mentions)
    return True


async def remove(session: AsyncSession, outbox: Outbox, caller: Principal, post_id: uuid.UUID) -> None:
    """The author, a moderator or owner of the post's group, or staff deletes a post. Commits."""
    post: Post = (await visible_post(session, caller, post_id))[0]
    if post.author_id != caller.persona_id and not await may_moderate(session, caller, post):
        raise Forbidden("Only the author or a moderator deletes a post.")
    await _erase(session, outbox, post)
    await session.commit()


async def _erase(session: AsyncSession, outbox: Outbox, post: Post) -> None:
    """Deleting keeps a tombstone row (ids stay unique, events stay ordered) but no text."""
    now = utcnow()
    post.deleted_at = now
    post.body = ""
    post.mentions = []
    post.links = []
    post.media = []
    post.tags = []
    post.pinned_until = None
    post.group_pinned_at = None
    await session.execute(delete(PostTag).where(col(PostTag.post_id) == post.id))
    await session.execute(delete(PostRevision).where(col(PostRevision.post_id) == post.id))
    await session.execute(delete(Notification).where(col(Notification.post_id) == post.id))
    await publish_deleted(session, outbox, [post], now)


async def pin(session: AsyncSession, caller: Principal, post_id: uuid.UUID) -> PostPublic:
    """A group's owner pins one of its posts, which then leads the group's timeline."""
    post = await _group_owner_post(session, caller, post_id)
    if post.group_pinned_at is None:
        post.group_pinned_at = utcnow()
        await session.commit()
    return post_public(await visible_post(session, caller, post_id))


async def unpin(session: AsyncSession, caller: Principal, post_id: uuid.UUID) -> PostPublic:
    post = await _group_owner_post(session, caller, post_id)
    if post.group_pinned_at is not None:
        post.group_pinned_at = None
        await session.commit()
    return post_public(await visible_post(session, caller, post_id))


async def _group_owner_post(session: AsyncSession, caller: Principal, post_id: uuid.UUID) -> Post:
    post: Post = (await visible_post(session, caller, post_id))[0]
    if post.group_id is None:
        raise Conflict("Only group posts are pinned in a group; announcements use pinned_until.")
    assert caller.persona_id is not None
    membership = await session.get(MembershipReplica, (caller.persona_id, post.group_id))
    if membership is None or membership.role != "owner":
        raise Forbidden("Only the group's owners pin its posts.")
    await ensure_writable(session, post)
    return post
