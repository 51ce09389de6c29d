"""Feed's tables, on its own registry. Personas, groups and memberships are replicas kept up
to date from identity's and groups' events; the held-content terms are moderation's (decision
0032), kept from its events too."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Computed, Index, Text, text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import registry
from sqlalchemy.sql.compiler import DDLCompiler, SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Field, SQLModel

from kit.db import UTCDateTime, new_metadata
from kit.defaults import empty_list, new_id, utcnow
from kit.outbox import OutboxTables

REACTION_KINDS = ("like", "celebrate", "support", "insightful", "curious")
# What moderation (decision 0032) did to a post or a comment: NULL when nothing. ``hidden`` and
# ``held`` items are seen by their author only; ``removed`` ones are deleted (``deleted_at``)
# but keep their text, revisions and tags, for the record and for a restore.
MODERATION_STATES = ("hidden", "held", "removed")
# What moderation did to a group (``group.updated``'s ``moderation``): its posts are seen by
# nobody while it is set.
GROUP_MODERATION_STATES = ("hidden", "removed")


class FeedModel(SQLModel, registry=registry(metadata=new_metadata())):
    pass


# Full-text search (decision 0034, ``services.feed.search``). On PostgreSQL a post's and a
# comment's ``search`` is a stored generated ``tsvector`` (``kit.search.PG_SETUP``'s
# ``search_document``) with a GIN index. SQLite indexes the text in FTS5 tables instead
# (``post_search``, ``comment_search``: created and kept by triggers in the migration, outside
# this metadata), so there the column is a virtual NULL that costs nothing and its index a
# partial one that holds no row: the same table definition then describes both databases, and
# the migrations can be compared with it on either. The column is not mapped: no read of a
# post or comment loads its document; the search reads it as ``POST_SEARCH``/``COMMENT_SEARCH``.
class SearchDocument(ColumnElement[str]):
    """``search_document(lang, body)`` of the row (PostgreSQL); NULL on SQLite."""

    inherit_cache = True


@compiles(SearchDocument)
def _search_document(element: SearchDocument, compiler: SQLCompiler, **kw: Any) -> str:
    return "search_document(lang, body)"


@compiles(SearchDocument, "sqlite")
def _search_document_sqlite(element: SearchDocument, compiler: SQLCompiler, **kw: Any) -> str:
    return "NULL"


class SearchComputed(Computed):
    """Stored on PostgreSQL (which has no other kind); virtual on SQLite, where a stored
    column cannot be added to a table without rebuilding it."""


@compiles(SearchComputed, "sqlite")
def _search_computed_sqlite(element: SearchComputed, compiler: DDLCompiler, **kw: Any) -> str:
    return f"GENERATED ALWAYS AS ({compiler.sql_compiler.process(element.sqltext)}) VIRTUAL"


def search_column() -> Column[Any]:
    return Column(
        "search", TSVECTOR().with_variant(Text(), "sqlite"), SearchComputed(SearchDocument(), persisted=True)
    )


def search_index(table: str) -> Index:
    return Index(
        f"ix_{table}_search", "search", postgresql_using="gin", sqlite_where=text("search IS NOT NULL")
    )


def id_range_index(table: str) -> Index:
    """A BRIN index of ``id`` (PostgreSQL): ids are UUIDv7 and rows are written in their
    order, so a few index entries (a block range's least and greatest id) say which blocks hold
    a range of ids. Search ANDs it with the GIN index's matches (``search_sql.build``) for a
    few cents where the primary key's bitmap of the same range cost a millisecond per 20,000
    rows, and PostgreSQL gave up ANDing past about 40,000 (decision 0048). Empty on SQLite
    (no row has a NULL id), which has no BRIN indexes, so that the tables match the models on
    both databases."""
    return Index(
        f"ix_{table}_id_range",
        "id",
        postgresql_using="brin",
        postgresql_with={"autosummarize": "on"},
        sqlite_where=text("id IS NULL"),
    )


SEARCH_MAPPER_ARGS = {"exclude_properties": ["search"]}
MAX_LANG = 35  # a BCP 47 tag (``kit.search.language``)


def media_column() -> dict[str, Any]:
    """A ``media`` column's own arguments: rows written before media existed have none."""
    return {"server_default": text("'[]'")}


outbox_tables = OutboxTables(FeedModel.metadata)


class Post(FeedModel, table=True):
    """Ids are UUIDv7, so ``id`` order is creation order and the timelines' keyset is one
    column. Reaction and comment counts are kept on the row (atomic increments) so that a
    timeline page needs no aggregate."""

    __table_args__ = (
        Index("ix_post_author_id_id", "author_id", "id"),
        Index("ix_post_group_id_id", "group_id", "id"),
        Index("ix_post_context_audience_id", "context", "audience", "id"),
        Index("ix_post_context_pinned_until", "context", "pinned_until"),
        search_column(),
        search_index("post"),
        id_range_index("post"),
    )
    __mapper_args__ = SEARCH_MAPPER_ARGS

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    author_id: uuid.UUID
    context: str = Field(max_length=20)
    audience: str = Field(max_length=20)
    group_id: uuid.UUID | None = None
    body: str = Field(max_length=5000)
    # The language of the text (BCP 47), as its author declared it or as detected; NULL when
    # unknown. It chooses the stemming of the search document.
    lang: str | None = Field(default=None, max_length=MAX_LANG)
    mentions: list[dict[str, Any]] = Field(default_factory=empty_list, sa_type=JSON)
    tags: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    links: list[dict[str, Any]] = Field(default_factory=empty_list, sa_type=JSON)
    # The files attached at creation (decision 0036), as media described them: each a
    # ``schemas.MediaAttachment`` as it dumps, so that PostgreSQL's home page can write the
    # column as it is (``home_sql``). Kept up to date by ``internal.media.updated``.
    media: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_type=JSON, sa_column_kwargs=media_column()
    )
    pinned_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    group_pinned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    like_count: int = 0
    celebrate_count: int = 0
    support_count: int = 0
    insightful_count: int = 0
    curious_count: int = 0
    comment_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    edited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    moderation: str | None = Field(default=None, max_length=10)
    # The time of the moderation event last applied (or of the hold): older events are stale.
    moderated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    locked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PostTag(FeedModel, table=True):
    __tablename__ = "post_tag"
    __table_args__ = (Index("ix_post_tag_context_tag_post_id", "context", "tag", "post_id"),)

    post_id: uuid.UUID = Field(primary_key=True)
    tag: str = Field(primary_key=True, max_length=40)
    context: str = Field(max_length=20)


class PostRevision(FeedModel, table=True):
    """The text a post had before one edit."""

    __tablename__ = "post_revision"
    __table_args__ = (Index("ix_post_revision_post_id_id", "post_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    post_id: uuid.UUID
    body: str = Field(max_length=5000)
    links: list[dict[str, Any]] = Field(default_factory=empty_list, sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Comment(FeedModel, table=True):
    __table_args__ = (
        Index("ix_comment_post_id_parent_id_id", "post_id", "parent_id", "id"),
        search_column(),
        search_index("comment"),
        id_range_index("comment"),
    )
    __mapper_args__ = SEARCH_MAPPER_ARGS

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    post_id: uuid.UUID
    parent_id: uuid.UUID | None = None
    author_id: uuid.UUID = Field(index=True)
    body: str = Field(max_length=2000)
    lang: str | None = Field(default=None, max_length=MAX_LANG)
    mentions: list[dict[str, Any]] = Field(default_factory=empty_list, sa_type=JSON)
    media: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_type=JSON, sa_column_kwargs=media_column()
    )
    reply_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    edited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    moderation: str | None = Field(default=None, max_length=10)
    moderated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Reaction(FeedModel, table=True):
    post_id: uuid.UUID = Field(primary_key=True)
    persona_id: uuid.UUID = Field(primary_key=True, index=True)
    kind: str = Field(primary_key=True, max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Notification(FeedModel, table=True):
    """Something that happened to a persona: a mention, a comment on their post, a reply to
    their comment. Ids are UUIDv7, so the id also orders them for the stream."""

    __table_args__ = (Index("ix_notification_persona_id_id", "persona_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    kind: str = Field(max_length=20)
    actor_id: uuid.UUID
    post_id: uuid.UUID
    comment_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdempotencyKey(FeedModel, table=True):
    """The first answer to a create with an ``Idempotency-Key``, per persona."""

    __tablename__ = "idempotency_key"

    persona_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)
    resource_id: uuid.UUID | None = Field(default=None, index=True)
    status_code: int
    response: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Follow(FeedModel, table=True):
    __table_args__ = (Index("ix_follow_followee_id_follower_id", "followee_id", "follower_id"),)

    follower_id: uuid.UUID = Field(primary_key=True)
    followee_id: uuid.UUID = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PersonaReplica(FeedModel, table=True):
    """``limited`` (moderation's ``limit``, decision 0032) keeps the persona's posts to the
    organisation from everyone but its followers; the few limited personas are read through
    their partial index."""

    __tablename__ = "persona_replica"
    __table_args__ = (
        Index(
            "ix_persona_replica_limited",
            "id",
            sqlite_where=text("limited"),
            postgresql_where=text("limited"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    handle: str = Field(max_length=30, index=True)
    display_name: str = Field(max_length=100)
    status: str = Field(max_length=20)
    discoverable: bool = True
    limited: bool = False
    limited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class GroupReplica(FeedModel, table=True):
    """``moderation`` (``hidden``/``removed``, from ``group.updated``) hides the group's posts
    from everyone; the few moderated groups are read through their partial index."""

    __tablename__ = "group_replica"
    __table_args__ = (
        Index(
            "ix_group_replica_moderated",
            "id",
            sqlite_where=text("moderation IS NOT NULL"),
            postgresql_where=text("moderation IS NOT NULL"),
        ),
        Index("ix_group_replica_context_handle", "context", "handle"),
    )

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    # The group's handle (``group:`` in a search names a group by it); NULL in a row written
    # before the replica kept it, until the group's next event.
    handle: str | None = Field(default=None, max_length=30)
    visibility: str = Field(max_length=10)
    archived: bool = False
    moderation: str | None = Field(default=None, max_length=10)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class HeldTermSet(FeedModel, table=True):
    """The version of a context's held-content terms that feed holds (``internal.moderation.
    terms``): a set arrives whole and replaces the one held only when its version is newer. A
    context without a row has no terms."""

    __tablename__ = "held_term_set"

    context: str = Field(primary_key=True, max_length=20)
    version: int
    updated_at: datetime = Field(sa_type=UTCDateTime)


class HeldTerm(FeedModel, table=True):
    """A term that holds a new post or comment of its context for review (``content.held_by``):
    ``literal`` matches anywhere, ``word`` as a whole word; case does not matter. ``id`` is
    moderation's, and goes back to it in ``internal.content.held``."""

    __tablename__ = "held_term"
    __table_args__ = (Index("ix_held_term_context", "context"),)

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    term: str = Field(max_length=100)
    match: str = Field(max_length=10)


class MembershipReplica(FeedModel, table=True):
    __tablename__ = "membership_replica"

    persona_id: uuid.UUID = Field(primary_key=True)
    group_id: uuid.UUID = Field(primary_key=True, index=True)
    role: str = Field(default="member", max_length=20)
    joined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HomeInbox(FeedModel, table=True):
    """A reader's precomputed home timeline (PostgreSQL only; decision 0012): built when the
    reader opens it, kept up to date by fan-out on write, dropped when the reader's sources
    change and after ``home_inbox_hours``. Its entries hold every post of the home rule whose
    id is at least ``floor_id`` (every one when ``floor_id`` is NULL)."""

    __tablename__ = "home_inbox"

    reader_id: uuid.UUID = Field(primary_key=True)
    floor_id: uuid.UUID | None = None
    built_at: datetime = Field(sa_type=UTCDateTime)


class HomeEntry(FeedModel, table=True):
    """One post in one reader's inbox. ``built_at`` is the inbox's, so that entries expire with
    it (and entries left behind by a dropped inbox expire too)."""

    __tablename__ = "home_entry"
    __table_args__ = (Index("ix_home_entry_built_at", "built_at"),)

    reader_id: uuid.UUID = Field(primary_key=True)
    post_id: uuid.UUID = Field(primary_key=True)
    built_at: datetime = Field(sa_type=UTCDateTime)


class StoredTicket(FeedModel, table=True):
    """A one-time stream ticket (``streams.issue_ticket``): what a browser's ``EventSource``,
    which cannot send an Authorization header, opens the stream with. Stored as the SHA-256
    digest of its value, with what the token it was asked with stood for (one persona, its
    context, app, scopes and roles, and when the token expires: the stream still ends then). Used
    once (``used_at``), within ``stream_ticket_seconds``; housekeeping deletes it soon after."""

    __tablename__ = "stream_ticket"

    digest: str = Field(primary_key=True, max_length=64)
    persona_id: uuid.UUID
    context: str = Field(max_length=20)
    # the app the token was granted to (decision 0035), and its scopes
    app_id: str | None = Field(default=None, max_length=40)
    scope: str = Field(sa_type=Text)
    roles: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    token_expires_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


POST_SEARCH: Column[Any] = Post.__table__.c.search  # type: ignore[attr-defined]
COMMENT_SEARCH: Column[Any] = Comment.__table__.c.search  # type: ignore[attr-defined]
