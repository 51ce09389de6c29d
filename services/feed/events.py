"""What feed does with other services' events: keep its replicas of personas, groups and
memberships, which decide who sees what without calling another service on a read; and apply
moderation's actions and terms to its own rows (decision 0032; the flows are
``services.feed.moderation``'s).

Each consumed event is parsed into the model below that its handler declares; an event that
does not match is dead-lettered by the receiver (``kit.outbox``) and never reaches a handler.
Handlers are idempotent (the receiver also skips event ids it has processed) and tolerate
events that arrive late: a replica row newer than the event is left alone, and so is a row
moderated after the event's time.

Feed publishes, besides its own ``post.*``, ``comment.*`` and ``reaction.*`` events, internal
ones: ``internal.content.held`` (``HeldContent``), to moderation; and the records of its content
(decision 0033; ``PostRecord``, ``CommentRecord``, ``ReactionRecord``, built by
``services.feed.records``), to records alone. From records it takes
``internal.records.dispose`` (``Disposal``): what to destroy for good, by ``disposal``'s flows.
From media it takes ``internal.media.updated`` (``MediaUpdated``, decision 0036): a file's new
description, replaced in its post's or comment's list (``attachments.apply_update``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from sqlalchemy import and_, delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.contexts import Context
from domain.media import MediaAttachment
from kit.db import upsert
from kit.outbox import Consumer, Event, EventHandler, IdEvent, handler_outbox
from kit.timeutil import as_utc, utcnow
from services.feed import attachments, disposal, inbox, moderation, records
from services.feed.deletion import DELETED_COLUMNS, publish_deleted
from services.feed.models import (
    REACTION_KINDS,
    Comment,
    Follow,
    GroupReplica,
    HeldTerm,
    IdempotencyKey,
    MembershipReplica,
    Notification,
    PersonaReplica,
    Post,
    PostRevision,
    PostTag,
    Reaction,
)
from services.feed.schemas import Audience, ReactionKind


class _Data(BaseModel):
    """An event's data: fields it does not name are ignored; a field left out (or null) keeps
    what the replica holds."""

    model_config = ConfigDict(extra="ignore")


class PersonaChanged(_Data):
    """``persona.created``, ``persona.updated``, ``persona.deactivated`` (identity)."""

    context: Context | None = None
    handle: str | None = None
    display_name: str | None = None
    status: str = "active"
    discoverable: bool | None = None


class PersonaErased(_Data):
    """``persona.erased`` (identity)."""

    context: Context = "personal"


class GroupChanged(_Data):
    """``group.created``, ``group.updated``, ``group.archived``, ``group.restored`` (groups).
    ``moderation`` is what moderation did to the group; null (sent) means nothing, left out
    keeps what the replica holds."""

    context: Context | None = None
    handle: str | None = None
    visibility: Literal["open", "closed", "secret"] | None = None
    archived: bool | None = None
    moderation: Literal["hidden", "removed"] | None = None
    updated_at: datetime | None = None


class GroupDeleted(_Data):
    """``group.deleted`` (groups): the subject names the group, the data adds nothing needed."""


class MembershipChanged(_Data):
    """``membership.added``, ``membership.updated``, ``membership.removed`` (groups)."""

    persona_id: uuid.UUID
    group_id: uuid.UUID | None = None
    role: str | None = None
    joined_at: datetime | None = None
    updated_at: datetime | None = None


class Moderated(_Data):
    """What every ``moderation.*`` event carries (moderation): the report and action it comes
    from, and its target. It names no reporter, moderator or account."""

    context: Context
    report_id: uuid.UUID
    action_id: uuid.UUID | None = None
    target_type: Literal["post", "comment", "persona", "group"]
    target_id: uuid.UUID
    subject_id: uuid.UUID | None = None
    until: datetime | None = None


class ContentModerated(Moderated):
    """``moderation.content.{hidden,removed,restored,released}`` (moderation): the subject is
    the post or comment; ``post_id`` a comment's post."""

    target_type: Literal["post", "comment"]
    post_id: uuid.UUID | None = None


class PostModerated(Moderated):
    """``moderation.post.{locked,unlocked}`` (moderation): the subject is the post."""

    target_type: Literal["post"]


class PersonaModerated(Moderated):
    """``moderation.persona.{limited,unlimited}`` (moderation): the subject is the persona."""

    target_type: Literal["persona"]


class Term(_Data):
    id: uuid.UUID
    term: str = Field(min_length=1, max_length=100)
    match: Literal["literal", "word"]


class Terms(_Data):
    """``internal.moderation.terms`` (moderation): every held-content term of the context, at
    its ``version``; the subject is the context."""

    context: Context
    version: int = Field(ge=0)
    terms: list[Term] = Field(max_length=500)


class HeldContent(_Data):
    """``internal.content.held`` (feed, to moderation; published by ``content.hold``): a post or
    comment held for review, with its text as written, which moderation files a system report
    on. The subject is the item."""

    context: Context
    item_type: Literal["post", "comment"]
    item_id: uuid.UUID
    post_id: uuid.UUID
    author_id: uuid.UUID
    group_id: uuid.UUID | None
    body: str
    links: list[str]
    term_ids: list[uuid.UUID]
    created_at: datetime


PostChange = Literal["created", "edited", "deleted", "moderated", "restored"]


class PostRecord(_Data):
    """``internal.records.post`` (feed, to records alone; ``records.post_record``): a post's
    whole state after a change; the subject is the post. The text (``body``, its ``lang``,
    ``links`` as stored, ``mentions`` as persona ids, ``tags``) comes at creation and whenever
    it changed; a deletion or a moderation change leaves it out."""

    id: uuid.UUID
    author_id: uuid.UUID
    context: Context
    audience: Audience
    group_id: uuid.UUID | None
    created_at: datetime
    change: PostChange
    at: datetime
    deleted_at: datetime | None
    moderation: Literal["hidden", "held", "removed"] | None
    body: str | None = None
    lang: str | None = None
    links: list[dict[str, Any]] | None = None
    mentions: list[uuid.UUID] | None = None
    tags: list[str] | None = None


class CommentRecord(_Data):
    """``internal.records.comment`` (feed, to records alone; ``records.comment_record``): a
    comment's whole state after a change, its text (``body``, its ``lang``, ``mentions`` as
    persona ids) when it changed; the subject is the comment."""

    id: uuid.UUID
    post_id: uuid.UUID
    parent_id: uuid.UUID | None
    author_id: uuid.UUID
    context: Context
    group_id: uuid.UUID | None
    created_at: datetime
    change: PostChange
    at: datetime
    deleted_at: datetime | None
    moderation: Literal["hidden", "held", "removed"] | None
    body: str | None = None
    lang: str | None = None
    mentions: list[uuid.UUID] | None = None


class ReactionRecord(_Data):
    """``internal.records.reaction`` (feed, to records alone; ``records.reaction_record``); the
    subject is the post."""

    post_id: uuid.UUID
    persona_id: uuid.UUID
    kind: ReactionKind
    context: Context
    group_id: uuid.UUID | None
    change: Literal["added", "removed"]
    at: datetime


class MediaUpdated(_Data):
    """``internal.media.updated`` (media): what became of a file attached to ``owner_kind``
    ``owner_id`` (its description edited), as media now describes it; the subject is the file.
    Feed keeps the files of posts and comments; an avatar's or a group image's is ignored."""

    owner_kind: Literal["post", "comment", "avatar", "group_image"]
    owner_id: uuid.UUID
    media: MediaAttachment


# Records sends at most this many items in one ``internal.records.dispose``.
DISPOSE_MAX = 1000


class PostsDisposed(_Data):
    kind: Literal["post"]
    ids: list[uuid.UUID] = Field(max_length=DISPOSE_MAX)


class CommentsDisposed(_Data):
    kind: Literal["comment"]
    ids: list[uuid.UUID] = Field(max_length=DISPOSE_MAX)


class DisposedReaction(_Data):
    post_id: uuid.UUID
    persona_id: uuid.UUID
    kind: str = Field(max_length=20)


class ReactionsDisposed(_Data):
    kind: Literal["reaction"]
    reactions: list[DisposedReaction] = Field(max_length=DISPOSE_MAX)


class RevisionsDisposed(_Data):
    kind: Literal["revisions"]
    post_ids: list[uuid.UUID] = Field(max_length=DISPOSE_MAX)
    before: datetime


class ClassDisposed(_Data):
    """An operational class, disposed of by age; feed's is ``notifications``."""

    class_: str = Field(alias="class", max_length=40)
    before: datetime


class OtherDisposal(_Data):
    """A kind feed does not know: another service's, ignored."""

    kind: str | None = None


DISPOSAL_KINDS = ("post", "comment", "reaction", "revisions")


def _disposal(data: Any) -> str:
    """Which shape of ``internal.records.dispose`` ``data`` is: by its ``kind``, else by its
    ``class``."""
    if isinstance(data, dict):
        if data.get("kind") in DISPOSAL_KINDS:
            return str(data["kind"])
        if "class" in data and "kind" not in data:
            return "class"
    return "other"


Disposal = Annotated[
    Annotated[PostsDisposed, Tag("post")]
    | Annotated[CommentsDisposed, Tag("comment")]
    | Annotated[ReactionsDisposed, Tag("reaction")]
    | Annotated[RevisionsDisposed, Tag("revisions")]
    | Annotated[ClassDisposed, Tag("class")]
    | Annotated[OtherDisposal, Tag("other")],
    Discriminator(_disposal),
]
"""``internal.records.dispose`` (records): what feed destroys for good (decision 0033), one of
the shapes above; the subject is the disposition run."""


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


async def on_persona_changed(session: AsyncSession, event: IdEvent[PersonaChanged]) -> None:
    data = event.data
    persona_id = event.subject
    # a persona's events are ordered by their own time: the profile's updated_at does not move
    # when the account's status does (docs/boundary.md)
    updated_at = as_utc(event.time)
    current = await session.get(PersonaReplica, persona_id)
    if current is not None and (as_utc(current.updated_at) > updated_at or current.status == "erased"):
        return  # an older event delivered late, or a persona already erased
    handle = data.handle if data.handle is not None else (current.handle if current else "")
    name = data.display_name if data.display_name is not None else (current.display_name if current else "")
    discoverable = (
        data.discoverable if data.discoverable is not None else (current.discoverable if current else True)
    )
    values = {
        "id": persona_id,
        "context": data.context or (current.context if current else "professional"),
        "handle": handle[:30],
        "display_name": name[:100],
        "status": "deactivated" if event.type == "persona.deactivated" else data.status,
        "discoverable": discoverable,
        "updated_at": updated_at,
    }
    await upsert(session, PersonaReplica, values, ["id"])


async def on_persona_erased(session: AsyncSession, event: IdEvent[PersonaErased]) -> None:
    """Erasure removes the persona's content, reactions, follows, memberships and
    notifications; the replica row stays as a tombstone so that a late event cannot revive
    it."""
    persona_id = event.subject
    await inbox.drop(session, persona_id)  # first: the inbox lock before any row lock
    now = utcnow()
    own_posts = select(Post.id).where(col(Post.author_id) == persona_id)
    await session.execute(delete(PostTag).where(col(PostTag.post_id).in_(own_posts)))
    await session.execute(delete(PostRevision).where(col(PostRevision.post_id).in_(own_posts)))
    # What moderation removed kept its text (decision 0032): erasure blanks it too, and
    # announces to others only the posts not announced deleted already (``publish_deleted``).
    erased = await session.execute(
        update(Post)
        .where(
            col(Post.author_id) == persona_id,
            or_(col(Post.deleted_at).is_(None), col(Post.moderation).is_not(None)),
        )
        .values(
            deleted_at=func.coalesce(col(Post.deleted_at), now),
            body="",
            mentions=[],
            links=[],
            media=[],
            tags=[],
            pinned_until=None,
        )
        .returning(*DELETED_COLUMNS)
    )
    outbox = handler_outbox(session)
    await publish_deleted(session, outbox, erased.all(), now)
    # Only the comments everyone saw are counted (``commenting.counted``).
    counted = and_(
        col(Comment.author_id) == persona_id,
        col(Comment.deleted_at).is_(None),
        col(Comment.moderation).is_(None),
    )
    live_comments = (
        select(func.count())
        .select_from(Comment)
        .where(col(Comment.post_id) == col(Post.id), counted)
        .scalar_subquery()
    )
    await session.execute(
        update(Post)
        .where(col(Post.id).in_(select(Comment.post_id).where(counted)))
        .values(comment_count=col(Post.comment_count) - live_comments)
    )
    comments = (
        await session.execute(
            update(Comment)
            .where(
                col(Comment.author_id) == persona_id,
                or_(col(Comment.deleted_at).is_(None), col(Comment.moderation).is_not(None)),
            )
            .values(deleted_at=func.coalesce(col(Comment.deleted_at), now), body="", mentions=[], media=[])
            .returning(*records.COMMENT_COLUMNS)
        )
    ).all()
    for kind in REACTION_KINDS:
        column = getattr(Post, f"{kind}_count")
        reacted = select(Reaction.post_id).where(
            col(Reaction.persona_id) == persona_id, col(Reaction.kind) == kind
        )
        await session.execute(update(Post).where(col(Post.id).in_(reacted)).values({column: column - 1}))
    reactions = (
        await session.execute(
            delete(Reaction)
            .where(col(Reaction.persona_id) == persona_id)
            .returning(col(Reaction.post_id), col(Reaction.kind))
        )
    ).all()
    await records.publish_erased(session, outbox, persona_id, comments, reactions, now)
    await session.execute(
        delete(Notification).where(
            or_(col(Notification.persona_id) == persona_id, col(Notification.actor_id) == persona_id)
        )
    )
    await session.execute(delete(IdempotencyKey).where(col(IdempotencyKey.persona_id) == persona_id))
    await session.execute(
        delete(Follow).where(
            or_(col(Follow.follower_id) == persona_id, col(Follow.followee_id) == persona_id)
        )
    )
    await session.execute(delete(MembershipReplica).where(col(MembershipReplica.persona_id) == persona_id))
    values = {
        "id": persona_id,
        "context": event.data.context,
        "handle": "",
        "display_name": "",
        "status": "erased",
        "discoverable": False,
        "updated_at": now,
    }
    await upsert(session, PersonaReplica, values, ["id"])


async def on_group_changed(session: AsyncSession, event: IdEvent[GroupChanged]) -> None:
    data = event.data
    group_id = event.subject
    updated_at = _utc(data.updated_at) or event.time
    current = await session.get(GroupReplica, group_id)
    if current is not None and (
        current.updated_at > updated_at
        or (current.updated_at == updated_at and not _moderation_changes(data, current))
    ):
        return
    archived = data.archived if data.archived is not None else (current.archived if current else False)
    if event.type == "group.archived":
        archived = True
    elif event.type == "group.restored":
        archived = False
    values = {
        "id": group_id,
        "context": data.context or (current.context if current else "professional"),
        "handle": data.handle.lower()[:30] if data.handle else (current.handle if current else None),
        "visibility": data.visibility or (current.visibility if current else "closed"),
        "archived": archived,
        "moderation": data.moderation
        if "moderation" in data.model_fields_set
        else (current.moderation if current else None),
        "updated_at": updated_at,
    }
    await upsert(session, GroupReplica, values, ["id"])


def _moderation_changes(data: GroupChanged, current: GroupReplica) -> bool:
    """Whether ``group.updated`` changes the group's moderation: a moderation action need not
    move the group's ``updated_at`` (it is no edit of the group), so an event as recent as the
    replica's row still applies when it does."""
    return "moderation" in data.model_fields_set and data.moderation != current.moderation


async def on_group_deleted(session: AsyncSession, event: IdEvent[GroupDeleted]) -> None:
    """A deleted group takes its posts with it. The group's row is locked first: a post being
    written to the group (which holds it shared, ``routes.posts``) commits before the posts are
    removed, or finds the group gone."""
    group_id = event.subject
    await session.get(GroupReplica, group_id, with_for_update=True)
    group_posts = select(Post.id).where(col(Post.group_id) == group_id)
    await session.execute(delete(PostTag).where(col(PostTag.post_id).in_(group_posts)))
    await session.execute(delete(PostRevision).where(col(PostRevision.post_id).in_(group_posts)))
    await session.execute(delete(Notification).where(col(Notification.post_id).in_(group_posts)))
    now = utcnow()
    removed = await session.execute(
        update(Post)
        .where(col(Post.group_id) == group_id, col(Post.deleted_at).is_(None))
        .values(deleted_at=now, body="", mentions=[], links=[], media=[], tags=[], group_pinned_at=None)
        .returning(*DELETED_COLUMNS)
    )
    await publish_deleted(session, handler_outbox(session), removed.all(), now)
    await session.execute(delete(MembershipReplica).where(col(MembershipReplica.group_id) == group_id))
    await session.execute(delete(GroupReplica).where(col(GroupReplica.id) == group_id))


async def on_membership_changed(session: AsyncSession, event: IdEvent[MembershipChanged]) -> None:
    data = event.data
    persona_id = data.persona_id
    group_id = data.group_id or event.subject
    updated_at = _utc(data.updated_at)
    current = await session.get(MembershipReplica, (persona_id, group_id))
    if current is not None and current.updated_at and updated_at and current.updated_at > updated_at:
        return
    if current is None:
        await inbox.drop(session, persona_id)  # a new group among the persona's sources
    role = data.role
    values = {
        "persona_id": persona_id,
        "group_id": group_id,
        "role": role if role in ("owner", "moderator", "member") else "member",
        "joined_at": _utc(data.joined_at),
        "updated_at": updated_at,
    }
    await upsert(session, MembershipReplica, values, ["persona_id", "group_id"])


async def on_membership_removed(session: AsyncSession, event: IdEvent[MembershipChanged]) -> None:
    data = event.data
    persona_id = data.persona_id
    group_id = data.group_id or event.subject
    updated_at = _utc(data.updated_at)
    current = await session.get(MembershipReplica, (persona_id, group_id))
    if current is None:
        return
    if current.updated_at and updated_at and current.updated_at > updated_at:
        return  # the persona joined again after this removal
    await inbox.drop(session, persona_id)
    await session.delete(current)


CONTENT_ACTIONS: dict[str, moderation.ContentAction] = {
    f"moderation.content.{action}": action for action in ("hidden", "removed", "restored", "released")
}


async def on_content_moderated(session: AsyncSession, event: IdEvent[ContentModerated]) -> None:
    moderate = moderation.moderate_post if event.data.target_type == "post" else moderation.moderate_comment
    action = CONTENT_ACTIONS[event.type]
    await moderate(session, handler_outbox(session), event.subject, action, as_utc(event.time))


async def on_post_moderated(session: AsyncSession, event: IdEvent[PostModerated]) -> None:
    locked = event.type == "moderation.post.locked"
    await moderation.lock_post(session, event.subject, locked, as_utc(event.time))


async def on_persona_moderated(session: AsyncSession, event: IdEvent[PersonaModerated]) -> None:
    limited = event.type == "moderation.persona.limited"
    await moderation.limit_persona(session, event.subject, limited, as_utc(event.time))


async def on_terms(session: AsyncSession, event: Event[Terms]) -> None:
    data = event.data
    terms = [HeldTerm(id=t.id, context=data.context, term=t.term, match=t.match) for t in data.terms]
    await moderation.replace_terms(session, data.context, data.version, terms, as_utc(event.time))


async def on_dispose(session: AsyncSession, event: Event[Disposal]) -> None:
    data = event.data
    outbox = handler_outbox(session)
    if isinstance(data, PostsDisposed):
        await disposal.dispose_posts(session, outbox, data.ids)
    elif isinstance(data, CommentsDisposed):
        await disposal.dispose_comments(session, outbox, data.ids)
    elif isinstance(data, ReactionsDisposed):
        keys = [(r.post_id, r.persona_id, r.kind) for r in data.reactions]
        await disposal.dispose_reactions(session, outbox, keys)
    elif isinstance(data, RevisionsDisposed):
        await disposal.dispose_revisions(session, data.post_ids, as_utc(data.before))
    elif isinstance(data, ClassDisposed) and data.class_ == "notifications":
        await disposal.dispose_notifications(session, as_utc(data.before))


async def on_media_updated(session: AsyncSession, event: IdEvent[MediaUpdated]) -> None:
    data = event.data
    await attachments.apply_update(session, data.owner_kind, data.owner_id, data.media)


persona_changed = Consumer(IdEvent[PersonaChanged], on_persona_changed)
group_changed = Consumer(IdEvent[GroupChanged], on_group_changed)
membership_changed = Consumer(IdEvent[MembershipChanged], on_membership_changed)
content_moderated = Consumer(IdEvent[ContentModerated], on_content_moderated)
post_moderated = Consumer(IdEvent[PostModerated], on_post_moderated)
persona_moderated = Consumer(IdEvent[PersonaModerated], on_persona_moderated)

handlers: dict[str, EventHandler] = {
    "persona.created": persona_changed,
    "persona.updated": persona_changed,
    "persona.deactivated": persona_changed,
    "persona.erased": Consumer(IdEvent[PersonaErased], on_persona_erased),
    "group.created": group_changed,
    "group.updated": group_changed,
    "group.archived": group_changed,
    "group.restored": group_changed,
    "group.deleted": Consumer(IdEvent[GroupDeleted], on_group_deleted),
    "membership.added": membership_changed,
    "membership.updated": membership_changed,
    "membership.removed": Consumer(IdEvent[MembershipChanged], on_membership_removed),
    **dict.fromkeys(CONTENT_ACTIONS, content_moderated),
    "moderation.post.locked": post_moderated,
    "moderation.post.unlocked": post_moderated,
    "moderation.persona.limited": persona_moderated,
    "moderation.persona.unlimited": persona_moderated,
    "internal.moderation.terms": Consumer(Event[Terms], on_terms),
    "internal.records.dispose": Consumer(Event[Disposal], on_dispose),
    "internal.media.updated": Consumer(IdEvent[MediaUpdated], on_media_updated),
}
