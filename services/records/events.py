"""What records does with other services' events (decision 0033): its replicas of identity's
personas and staff roles, and the records copy of posts, comments, reactions, groups and
memberships.

Each consumed event is parsed into the model below that its handler declares; an event that
does not match is dead-lettered by the receiver (``kit.outbox``) and never reaches a handler.

The copy appends, never rewrites. Every ``internal.records.*`` event of an item appends a
version: with the text when the event carries it (creation, an edit, a restore), without
(``body`` null) when it does not (a deletion, a moderation change), so that whatever an author or
a moderator does later, every state the item had is kept until its retention ends. Versions of
an item are numbered as their events arrive; the owner publishes an item's events in order (one
subject), so that is their order. An event applied twice appends nothing: the receiver skips an
event id it has applied, and a version with the same owner's time and change as one the item has
(the same change published again under another id) is skipped too. The item's state (deletion,
moderation, class) follows the latest change by the owner's time, so an older event delivered
late adds its version and changes nothing else.

A comment (created or edited) or an added reaction is activity on its post: the post's
``last_activity_at`` moves to it, by which a policy counted from the last activity ages posts.

Media (decision 0036) sends ``internal.records.media`` for a file attached to a post or a
comment whenever it is attached, withdrawn with its owner, restored or its description edited:
each appends a version with the whole state to a ``MediaRecord`` (a table of its own, see
``models``), once per owner's time, the state following the latest by that time as for items.
Its class is its post's: a post's event brings the class of the media hanging from it (its
own and its comments') into step. Avatars and group images are not records: their events, and
a media no longer attached to anything, are ignored.

An event about an item disposition has destroyed (one delivered very late, or a change feed
made while the dispose event was on its way) creates the item again from what it carries;
nothing at the owner is brought back by it, and the next run disposes of the copy again under
the same policy. Keeping tombstones of disposed ids to refuse such events would keep the very
ids the schedule destroyed.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Uuid, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from domain.contexts import Context
from domain.events import PersonaChanged, PersonaErased, StaffUpdated, erase_persona, keep_persona, keep_staff
from kit.db import UTCDateTime, upsert
from kit.ids import new_id
from kit.outbox import Consumer, EventHandler, IdEvent
from kit.timeutil import as_utc, utcnow
from services.records import classes
from services.records.models import (
    GroupRecord,
    GroupVersion,
    Item,
    ItemVersion,
    MediaRecord,
    MediaVersion,
    MembershipEvent,
    PersonaReplica,
    StaffReplica,
)
from services.records.officers import OFFICER_ROLES

MAX_BODY = 100_000
MAX_LIST = 1000


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PostRecorded(_Event):
    """``internal.records.post`` (feed): a post's whole state after a change; with ``body``,
    ``links``, ``mentions`` and ``tags`` when its text was given or changed."""

    id: uuid.UUID
    author_id: uuid.UUID
    context: Context
    audience: str = Field(max_length=20)
    group_id: uuid.UUID | None = None
    created_at: datetime
    change: Literal["created", "edited", "deleted", "moderated", "restored"]
    at: datetime
    deleted_at: datetime | None = None
    moderation: str | None = Field(default=None, max_length=10)
    body: str | None = Field(default=None, max_length=MAX_BODY)
    links: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_LIST)
    mentions: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_LIST)
    tags: list[str] = Field(default_factory=list, max_length=MAX_LIST)


class CommentRecorded(_Event):
    """``internal.records.comment`` (feed): a comment's whole state after a change; with
    ``body`` and ``mentions`` when its text was given or changed."""

    id: uuid.UUID
    post_id: uuid.UUID
    parent_id: uuid.UUID | None = None
    author_id: uuid.UUID
    context: Context
    group_id: uuid.UUID | None = None
    created_at: datetime
    change: Literal["created", "edited", "deleted", "moderated", "restored"]
    at: datetime
    deleted_at: datetime | None = None
    moderation: str | None = Field(default=None, max_length=10)
    body: str | None = Field(default=None, max_length=MAX_BODY)
    mentions: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_LIST)


class ReactionRecorded(_Event):
    """``internal.records.reaction`` (feed; the subject is the post): a reaction added or
    removed. A reaction has no id at feed: the copy's is ``classes.reaction_id``."""

    post_id: uuid.UUID
    persona_id: uuid.UUID
    kind: str = Field(min_length=1, max_length=20)
    context: Context
    group_id: uuid.UUID | None = None
    change: Literal["added", "removed"]
    at: datetime


class GroupRecorded(_Event):
    """``internal.records.group`` (groups): a group's whole charter after a change."""

    id: uuid.UUID
    context: Context
    handle: str = Field(max_length=100)
    name: str = Field(max_length=200)
    purpose: str = Field(default="", max_length=10_000)
    visibility: str = Field(max_length=10)
    created_at: datetime
    change: Literal["created", "updated", "archived", "restored", "deleted", "moderated"]
    at: datetime
    deleted: bool = False


class MembershipChanged(_Event):
    """``membership.added``, ``.updated``, ``.removed`` (groups); the subject is the group."""

    group_id: uuid.UUID | None = None
    persona_id: uuid.UUID
    context: Context
    role: str | None = Field(default=None, max_length=20)
    updated_at: datetime | None = None


class MediaRecorded(_Event):
    """``internal.records.media`` (media; the subject is the media's id): a file's whole state
    after it was attached, withdrawn, restored or its description edited. ``post_id`` is a
    comment's post (a post's media may leave it out: it is the owner). ``change`` is optional:
    without it the copy tells the change from the state before."""

    owner_kind: str | None = Field(default=None, max_length=20)
    owner_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    uploader_id: uuid.UUID
    context: Context
    media_type: str = Field(max_length=20)
    content_type: str = Field(max_length=127)
    filename: str = Field(default="", max_length=255)
    description: str | None = Field(default=None, max_length=MAX_BODY)
    size: int = Field(ge=0)
    sha256: str | None = Field(default=None, max_length=64)
    attached_at: datetime | None = None
    withdrawn_at: datetime | None = None
    at: datetime
    change: Literal["attached", "edited", "withdrawn", "restored"] | None = None

    @model_validator(mode="after")
    def _owned(self) -> MediaRecorded:
        if self.owner_kind in RECORDED_OWNERS and self.owner_id is None:
            raise ValueError("an attached media names its owner_id")
        if self.owner_kind == "comment" and self.post_id is None:
            raise ValueError("a comment's media names the comment's post_id")
        return self


# The owners whose media are records (decision 0036): avatars and group images are not.
RECORDED_OWNERS = ("post", "comment")


@dataclass(frozen=True, slots=True)
class Text:
    """The text an event carries (creation, edit, restore)."""

    body: str
    links: list[Any] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class State:
    """An item's state as its owner's event describes it."""

    id: uuid.UUID
    kind: str
    context: str
    author_id: uuid.UUID
    created_at: datetime
    change: str
    at: datetime
    group_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    audience: str | None = None
    reaction: str | None = None
    deleted_at: datetime | None = None
    moderation: str | None = None

    @property
    def klass(self) -> str:
        return classes.klass(self.kind, self.context, audience=self.audience, group_id=self.group_id)


# The statements every content event runs, built once with bound parameters (decision 0049).
_POST_ID: Any = bindparam("post", type_=Uuid())
_AT: Any = bindparam("at", type_=UTCDateTime())
_HAS_VERSION = select(
    exists().where(
        col(ItemVersion.item_id) == bindparam("item", type_=Uuid()),
        col(ItemVersion.at) == _AT,
        col(ItemVersion.change) == bindparam("change"),
    )
)
_OTHER = aliased(Item)
_LATEST = (
    select(func.max(col(_OTHER.last_activity_at))).where(col(_OTHER.post_id) == _POST_ID).scalar_subquery()
)
_BUMP = (
    update(Item)
    .where(col(Item.id) == _POST_ID, col(Item.last_activity_at) < _AT)
    .values(last_activity_at=_AT)
    .execution_options(synchronize_session=False)
)
_NEW_VERSION = insert(ItemVersion.__table__)  # type: ignore[attr-defined]
_KLASS: Any = bindparam("new_klass")
_MEDIA_FOLLOW = (
    update(MediaRecord)
    .where(col(MediaRecord.post_id) == _POST_ID, col(MediaRecord.klass) != _KLASS)
    .values(klass=_KLASS)
    .execution_options(synchronize_session=False)
)


async def keep(session: AsyncSession, state: State, text: Text | None) -> str | None:
    """Appends the version ``state`` and ``text`` describe to the item (created on first
    sight) and returns the item's class; returns None, writing nothing, for a change the item
    has already.

    Safe however often and however concurrently an event is delivered, so its consumers need
    no claim (``kit.outbox.Consumer.idempotent``; decision 0046). The first statement inserts
    the item and does nothing when it is there: a delivery that meets another's uncommitted
    insert waits for it (PostgreSQL), and the write comes first so that SQLite, which locks
    only at a transaction's first write, serializes the deliveries before anything is read.
    A delivery that inserted nothing then reads the item, locked, and finds the change there
    or appends it."""
    at = as_utc(state.at)
    item = None
    while item is None:  # again only if a disposal deleted the item between the two statements
        if await _insert_new(session, state, text):
            return state.klass
        item = await session.get(Item, state.id, with_for_update=True)
    if await _has_version(session, item.id, at, state.change):
        return None
    if at >= as_utc(item.changed_at):
        _apply(item, state)
    item.versions += 1
    if text is not None and at > as_utc(item.last_activity_at):
        item.last_activity_at = at
    await _add_version(session, item.id, item.versions, state, text)
    return item.klass


async def _add_version(
    session: AsyncSession, item_id: uuid.UUID, number: int, state: State, text: Text | None
) -> None:
    """Inserts the version: by a statement built once, as ``_insert_new`` inserts an item,
    since records writes one on every event and an object of the model costs more to build
    than the insert to run."""
    await session.execute(_NEW_VERSION, {"item_id": item_id, **_version(number, state, text)})


def _version(number: int, state: State, text: Text | None) -> dict[str, Any]:
    """A version's values, its item's id aside."""
    return {
        "id": new_id(),
        "version": number,
        "change": state.change,
        "body": text.body if text is not None else None,
        "links": text.links if text is not None else [],
        "mentions": text.mentions if text is not None else [],
        "tags": text.tags if text is not None else [],
        "at": as_utc(state.at),
        "recorded_at": utcnow(),
    }


async def _has_version(session: AsyncSession, item_id: uuid.UUID, at: datetime, change: str) -> bool:
    return bool(await session.scalar(_HAS_VERSION, {"item": item_id, "at": at, "change": change}))


async def _insert_new(session: AsyncSession, state: State, text: Text | None) -> bool:
    """Inserts the item as first seen, with its first version; False, writing nothing, when
    it is there already. A post's last activity is also that of comments and reactions on it
    that arrived before it (events of different subjects arrive in no set order): the insert
    itself reads theirs."""
    created_at = as_utc(state.created_at)
    values = {
        "id": state.id,
        "kind": state.kind,
        "context": state.context,
        "author_id": state.author_id,
        "post_id": state.post_id,
        "parent_id": state.parent_id,
        "reaction": state.reaction,
        "created_at": created_at,
        "last_activity_at": max(created_at, as_utc(state.at)) if text is not None else created_at,
        "versions": 1,
        "recorded_at": utcnow(),
        **_followed(state),
    }
    post = {"post": state.id} if state.kind == "post" else {}
    version = _version(1, state, text)
    dialect = session.get_bind().dialect.name
    statement = _new_item_statement(dialect, state.kind == "post")
    if dialect == "postgresql":  # the item and its first version in one statement
        versioned = {f"version_{key}": value for key, value in version.items()}
        return (await session.execute(statement, {**values, **post, **versioned})).first() is not None
    if not getattr(await session.execute(statement, {**values, **post}), "rowcount", 0):
        return False
    await session.execute(_NEW_VERSION, {"item_id": state.id, **version})
    return True


@functools.lru_cache(maxsize=4)
def _new_item_statement(dialect: str, post: bool) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` of an item, built once per dialect and kind. A
    post's last activity is the later of its own and the latest of the items already there on
    it. On PostgreSQL the item's insert is a ``WITH`` clause, and the statement inserts its
    first version from what that returns: nothing when the item was there, which the
    statement's ``RETURNING`` says (one round trip for every new item, that is for every
    write; the version's parameters are ``version_…``). SQLite, without data-modifying ``WITH``
    clauses, inserts the version in a statement of its own."""
    table: Any = Item.__table__  # type: ignore[attr-defined]
    values: dict[str, Any] = {
        column.key: bindparam(column.key, type_=column.type) for column in table.columns
    }
    own = values["last_activity_at"]
    if dialect != "postgresql":
        if post:
            values["last_activity_at"] = func.max(own, func.coalesce(_LATEST, own))
        return sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=["id"])
    if post:
        values["last_activity_at"] = func.greatest(own, _LATEST)  # NULL (nothing there) is ignored
    item = (
        postgresql.insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(table.c.id)
        .cte("new_item")
    )
    versions: Any = ItemVersion.__table__  # type: ignore[attr-defined]
    columns = [
        item.c.id if column.key == "item_id" else bindparam(f"version_{column.key}", type_=column.type)
        for column in versions.columns
    ]
    return (
        insert(versions)
        .from_select([column.key for column in versions.columns], select(*columns).select_from(item))
        .returning(versions.c.item_id)
    )


def _followed(state: State) -> dict[str, Any]:
    """The item's fields that follow its latest change, as ``state`` has them."""
    return {
        "klass": state.klass,
        "group_id": state.group_id,
        "audience": state.audience,
        "deleted_at": as_utc(state.deleted_at) if state.deleted_at is not None else None,
        "moderation": state.moderation,
        "changed_at": as_utc(state.at),
    }


def _apply(item: Item, state: State) -> None:
    for key, value in _followed(state).items():
        setattr(item, key, value)


async def _bump(session: AsyncSession, post_id: uuid.UUID, at: datetime) -> None:
    """Activity on a post (a comment, a reaction) moves its last activity forward."""
    await session.execute(_BUMP, {"post": post_id, "at": as_utc(at)})


async def on_post(session: AsyncSession, event: IdEvent[PostRecorded]) -> None:
    data = event.data
    state = State(
        id=data.id,
        kind="post",
        context=data.context,
        author_id=data.author_id,
        created_at=data.created_at,
        change=data.change,
        at=data.at,
        group_id=data.group_id,
        audience=data.audience,
        deleted_at=data.deleted_at,
        moderation=data.moderation,
    )
    text = None
    if data.body is not None:
        text = Text(data.body, list(data.links), [str(m) for m in data.mentions], list(data.tags))
    klass = await keep(session, state, text)
    if klass is not None:
        await _media_follow(session, data.id, klass)


async def on_comment(session: AsyncSession, event: IdEvent[CommentRecorded]) -> None:
    data = event.data
    state = State(
        id=data.id,
        kind="comment",
        context=data.context,
        author_id=data.author_id,
        created_at=data.created_at,
        change=data.change,
        at=data.at,
        group_id=data.group_id,
        post_id=data.post_id,
        parent_id=data.parent_id,
        deleted_at=data.deleted_at,
        moderation=data.moderation,
    )
    text = Text(data.body, mentions=[str(m) for m in data.mentions]) if data.body is not None else None
    if await keep(session, state, text) is not None and text is not None:
        await _bump(session, data.post_id, data.at)


async def on_reaction(session: AsyncSession, event: IdEvent[ReactionRecorded]) -> None:
    """A reaction is created at its first addition; a removal is a version with ``deleted_at``,
    and adding it again clears that."""
    data = event.data
    item_id = classes.reaction_id(data.post_id, data.persona_id, data.kind)
    state = State(
        id=item_id,
        kind="reaction",
        context=data.context,
        author_id=data.persona_id,
        created_at=data.at,  # read only when the item is new: its first addition (or removal)
        change=data.change,
        at=data.at,
        group_id=data.group_id,
        post_id=data.post_id,
        reaction=data.kind,
        deleted_at=data.at if data.change == "removed" else None,
    )
    if await keep(session, state, None) is not None and data.change == "added":
        await _bump(session, data.post_id, data.at)


async def on_media(session: AsyncSession, event: IdEvent[MediaRecorded]) -> None:
    """Appends the media's state as a version (once per owner's time), the record created on
    first sight; the record's state follows the latest change by media's time."""
    data = event.data
    if data.owner_kind not in RECORDED_OWNERS or data.owner_id is None:
        return  # an avatar, a group image, or a media no longer attached: not a record
    media_id = event.subject
    at = as_utc(data.at)
    record = await session.get(MediaRecord, media_id, with_for_update=True)
    if record is not None:
        same = exists().where(col(MediaVersion.media_id) == media_id, col(MediaVersion.at) == at)
        if await session.scalar(select(same)):
            return
    change = data.change or _media_change(record, data)
    post_id = data.owner_id if data.owner_kind == "post" else data.post_id
    assert post_id is not None  # MediaRecorded._owned
    if record is None:
        attached = data.attached_at if data.attached_at is not None else data.at
        record = MediaRecord(
            id=media_id,
            owner_kind=data.owner_kind,
            owner_id=data.owner_id,
            post_id=post_id,
            author_id=data.uploader_id,
            context=data.context,
            klass="",
            media_type=data.media_type,
            content_type=data.content_type,
            created_at=as_utc(attached),
            changed_at=at,
        )
        _apply_media(record, data, post_id, await _post_klass(session, post_id))
        session.add(record)
    elif at >= as_utc(record.changed_at):
        _apply_media(record, data, post_id, await _post_klass(session, post_id))
    record.versions += 1
    session.add(
        MediaVersion(
            media_id=media_id,
            version=record.versions,
            change=change,
            owner_kind=data.owner_kind,
            owner_id=data.owner_id,
            description=data.description,
            withdrawn_at=as_utc(data.withdrawn_at) if data.withdrawn_at is not None else None,
            at=at,
        )
    )


def _media_change(record: MediaRecord | None, data: MediaRecorded) -> str:
    """The change an event without ``change`` describes, from the record's state before it."""
    if record is None:
        return "withdrawn" if data.withdrawn_at is not None else "attached"
    if data.owner_id != record.owner_id:
        return "attached"  # released by an owner whose write failed, then attached elsewhere
    if data.withdrawn_at is not None and record.withdrawn_at is None:
        return "withdrawn"
    if data.withdrawn_at is None and record.withdrawn_at is not None:
        return "restored"
    return "edited"


def _apply_media(
    record: MediaRecord, data: MediaRecorded, post_id: uuid.UUID, post_klass: str | None
) -> None:
    """The state fields that follow the media's latest change."""
    assert data.owner_kind is not None and data.owner_id is not None
    record.owner_kind = data.owner_kind
    record.owner_id = data.owner_id
    record.post_id = post_id
    record.comment_id = data.owner_id if data.owner_kind == "comment" else None
    record.group_id = data.group_id
    record.author_id = data.uploader_id
    record.context = data.context
    record.klass = classes.media_klass(data.context, post_klass=post_klass, group_id=data.group_id)
    record.media_type = data.media_type
    record.content_type = data.content_type
    record.filename = data.filename
    record.size = data.size
    record.sha256 = data.sha256 or ""
    record.description = data.description
    if data.attached_at is not None:
        record.created_at = as_utc(data.attached_at)
    record.withdrawn_at = as_utc(data.withdrawn_at) if data.withdrawn_at is not None else None
    record.changed_at = as_utc(data.at)


async def _post_klass(session: AsyncSession, post_id: uuid.UUID) -> str | None:
    klass: str | None = await session.scalar(
        select(col(Item.klass)).where(col(Item.id) == post_id, col(Item.kind) == "post")
    )
    return klass


async def _media_follow(session: AsyncSession, post_id: uuid.UUID, klass: str) -> None:
    """The media hanging from a post (its own and its comments') take the post's class
    (``klass``: the one the post's item has now, just written)."""
    await session.execute(_MEDIA_FOLLOW, {"post": post_id, "new_klass": klass})


async def on_group(session: AsyncSession, event: IdEvent[GroupRecorded]) -> None:
    """Appends the charter as a version (once per owner's time and change) and keeps the
    latest as the group's record."""
    data = event.data
    at = as_utc(data.at)
    same = exists().where(
        col(GroupVersion.group_id) == data.id,
        col(GroupVersion.at) == at,
        col(GroupVersion.change) == data.change,
    )
    if await session.scalar(select(same)):
        return
    charter = data.model_dump(mode="json", exclude={"id", "change", "at"})
    session.add(GroupVersion(group_id=data.id, change=data.change, data=charter, at=at))
    current = await session.get(GroupRecord, data.id)
    if current is not None and as_utc(current.updated_at) > at:
        return
    deleted_at = None
    if data.deleted:
        deleted_at = current.deleted_at if current is not None and current.deleted_at else at
    values = {
        "id": data.id,
        "context": data.context,
        "handle": data.handle,
        "name": data.name,
        "purpose": data.purpose,
        "visibility": data.visibility,
        "created_at": as_utc(data.created_at),
        "deleted_at": deleted_at,
        "updated_at": at,
    }
    await upsert(session, GroupRecord, values, ["id"])


async def on_membership(session: AsyncSession, event: IdEvent[MembershipChanged]) -> None:
    """One row per event (its id is the row's): the membership history, in the owner's time."""
    data = event.data
    values = {
        "id": event.id,
        "group_id": data.group_id or event.subject,
        "persona_id": data.persona_id,
        "context": data.context,
        "role": data.role,
        "change": event.type.rsplit(".", 1)[-1],
        "at": as_utc(data.updated_at or event.time),
    }
    await upsert(session, MembershipEvent, values, ["id"], update=False)


async def on_persona_changed(session: AsyncSession, event: IdEvent[PersonaChanged]) -> None:
    await keep_persona(session, PersonaReplica, event)


async def on_persona_erased(session: AsyncSession, event: IdEvent[PersonaErased]) -> None:
    """Keeps a tombstone without the name and drops the persona's roles. Its content stays in
    the copy: erasure at the owners does not shorten a record's retention (decision 0033)."""
    persona_id = event.subject
    await session.execute(delete(StaffReplica).where(col(StaffReplica.persona_id) == persona_id))
    await erase_persona(session, PersonaReplica, event)


async def on_staff_updated(session: AsyncSession, event: IdEvent[StaffUpdated]) -> None:
    """The replica holds the persona's officer roles, ``admin`` and ``records`` (decision 0033)."""
    await keep_staff(session, StaffReplica, event, OFFICER_ROLES)


persona_changed = Consumer(IdEvent[PersonaChanged], on_persona_changed)
membership_changed = Consumer(IdEvent[MembershipChanged], on_membership)

handlers: dict[str, EventHandler] = {
    "persona.created": persona_changed,
    "persona.updated": persona_changed,
    "persona.deactivated": persona_changed,
    "persona.erased": Consumer(IdEvent[PersonaErased], on_persona_erased),
    "internal.staff.updated": Consumer(IdEvent[StaffUpdated], on_staff_updated),
    # Idempotent: a change an item has already adds nothing, and deliveries at once of a new
    # item's event insert it once (``keep``); what follows only moves values forward.
    "internal.records.post": Consumer(IdEvent[PostRecorded], on_post, idempotent=True),
    "internal.records.comment": Consumer(IdEvent[CommentRecorded], on_comment, idempotent=True),
    "internal.records.reaction": Consumer(IdEvent[ReactionRecorded], on_reaction, idempotent=True),
    # Claimed: their first-sight reads and writes are not safe against a concurrent delivery.
    "internal.records.group": Consumer(IdEvent[GroupRecorded], on_group),
    "internal.records.media": Consumer(IdEvent[MediaRecorded], on_media),
    "membership.added": membership_changed,
    "membership.updated": membership_changed,
    "membership.removed": membership_changed,
}
