"""Records' tables, on its own registry (decision 0033).

Records holds the records copy of every post, comment and reaction of both contexts, with every
version, and the persona ids a hold resolved for its custodians. Only officers reach it through
the API (``/api/v1/records/``), and every such call is audited; the persona link it keeps on a
hold is the one crossing of the boundary besides identity's audited admin link
(docs/boundary.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, PrimaryKeyConstraint, Text, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.db import UTCDateTime, new_metadata
from kit.defaults import empty_dict, empty_list, new_id, utcnow
from kit.outbox import OutboxTables


class RecordsModel(SQLModel, registry=registry(metadata=new_metadata())):
    pass


outbox_tables = OutboxTables(RecordsModel.metadata)


class PersonaReplica(RecordsModel, table=True):
    """What records knows of a persona, from identity's ``persona.*`` events: enough to check a
    token (``/api/v1/me/export``) and to name an author in an export."""

    __tablename__ = "persona_replica"

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    status: str = Field(max_length=20)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class StaffReplica(RecordsModel, table=True):
    """The roles (``admin``, ``records``, …) of a professional persona, from
    ``internal.staff.updated``. A persona without a role has no row."""

    __tablename__ = "staff_replica"

    persona_id: uuid.UUID = Field(primary_key=True)
    roles: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Item(RecordsModel, table=True):
    """A post, comment or reaction as the records copy holds it: its current state. Its
    versions are ``ItemVersion`` rows. A reaction's id is ``uuid5`` of its post, persona and
    kind (``classes.reaction_id``). ``klass`` is the retention class (``classes.klass``)."""

    __tablename__ = "item"
    __table_args__ = (
        Index("ix_item_klass_created", "klass", "created_at"),
        Index("ix_item_klass_activity", "klass", "last_activity_at"),
        Index("ix_item_author_created", "author_id", "created_at"),
        Index("ix_item_group_created", "group_id", "created_at"),
        Index("ix_item_post_id", "post_id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    kind: str = Field(max_length=10, description="post, comment or reaction")
    klass: str = Field(max_length=30)
    context: str = Field(max_length=20)
    author_id: uuid.UUID
    group_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = Field(default=None, description="A comment's or reaction's post.")
    parent_id: uuid.UUID | None = None
    audience: str | None = Field(default=None, max_length=20)
    reaction: str | None = Field(default=None, max_length=20, description="A reaction's kind.")
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_activity_at: datetime = Field(sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    moderation: str | None = Field(default=None, max_length=10)
    versions: int = Field(
        default=0,
        description="The number of the latest version: the next is one more (versions disposed of as "
        "edit history leave gaps).",
    )
    changed_at: datetime = Field(
        sa_type=UTCDateTime,
        description="The owner's time of the latest change applied to the state above: an older event "
        "delivered late appends its version but leaves the state as it is.",
    )
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ItemVersion(RecordsModel, table=True):
    """One state of an item, appended as its owner's event arrives. ``body`` is null for a
    change that left the text as it was (a deletion, a moderation action)."""

    __tablename__ = "item_version"
    __table_args__ = (
        UniqueConstraint("item_id", "version", name="uq_item_version"),
        Index("ix_item_version_at", "at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    item_id: uuid.UUID
    version: int
    change: str = Field(max_length=20)
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    links: list[Any] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    mentions: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    tags: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(sa_type=UTCDateTime, description="When the owner made the change.")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MediaRecord(RecordsModel, table=True):
    """A media file attached to a post or a comment, as the records copy holds it, from media's
    ``internal.records.media`` events (decision 0036): its current state; its versions are
    ``MediaVersion`` rows. A table of its own rather than an ``Item`` of another kind: a file
    has a name, a type, a size and a digest, and no text, audience or reaction, and every
    statement over items (classes, edit history, the package's content entries) stays as it
    was. It hangs from its owner: ``post_id`` is the post (the comment's post for a comment's
    media), ``comment_id`` the comment; it is disposed of with them (``disposition``).

    ``klass`` is its post's class (``classes.media_klass``), kept in step when the post's own
    event arrives; it decides which export classes take it and when a media whose owner is
    not in the copy is disposed of. ``created_at`` is when it was attached. The bytes stay at
    media: an export fetches them."""

    __tablename__ = "media_record"
    __table_args__ = (
        Index("ix_media_record_post_id", "post_id"),
        Index("ix_media_record_comment_id", "comment_id"),
        Index("ix_media_record_author_created", "author_id", "created_at"),
        Index("ix_media_record_group_created", "group_id", "created_at"),
        Index("ix_media_record_klass_created", "klass", "created_at"),
    )

    id: uuid.UUID = Field(primary_key=True, description="The media's id at media.")
    owner_kind: str = Field(max_length=10, description="post or comment")
    owner_id: uuid.UUID
    post_id: uuid.UUID
    comment_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    author_id: uuid.UUID = Field(description="The uploader: the post's or comment's author.")
    context: str = Field(max_length=20)
    klass: str = Field(max_length=30)
    media_type: str = Field(max_length=20)
    content_type: str = Field(max_length=127)
    filename: str = Field(default="", max_length=255)
    size: int = Field(default=0, sa_type=BigInteger)
    sha256: str = Field(default="", max_length=64)
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    versions: int = 0
    changed_at: datetime = Field(
        sa_type=UTCDateTime, description="The owner's time of the latest change applied to the state above."
    )
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MediaVersion(RecordsModel, table=True):
    """One state of a media, appended as media's event arrives: attached, its description
    edited, withdrawn with its owner, restored. Each holds the whole state it describes."""

    __tablename__ = "media_version"
    __table_args__ = (UniqueConstraint("media_id", "version", name="uq_media_version"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    media_id: uuid.UUID
    version: int
    change: str = Field(max_length=20)
    owner_kind: str = Field(max_length=10)
    owner_id: uuid.UUID
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    at: datetime = Field(sa_type=UTCDateTime, description="When media made the change.")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class GroupRecord(RecordsModel, table=True):
    """A group's charter as it is now, from ``internal.records.group``; its history is
    ``GroupVersion`` rows."""

    __tablename__ = "group_record"

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    handle: str = Field(max_length=100)
    name: str = Field(max_length=200)
    purpose: str = Field(default="", sa_column=Column(Text, nullable=False))
    visibility: str = Field(max_length=10)
    created_at: datetime = Field(sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class GroupVersion(RecordsModel, table=True):
    """One change of a group's charter: the whole charter after it."""

    __tablename__ = "group_version"
    __table_args__ = (Index("ix_group_version_group_at", "group_id", "at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    group_id: uuid.UUID
    change: str = Field(max_length=20)
    data: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MembershipEvent(RecordsModel, table=True):
    """One change of a membership, from groups' ``membership.*`` events: the history a
    matter's export lists."""

    __tablename__ = "membership_event"
    __table_args__ = (
        Index("ix_membership_event_group_at", "group_id", "at"),
        Index("ix_membership_event_persona_at", "persona_id", "at"),
    )

    id: uuid.UUID = Field(primary_key=True, description="The event's id: a redelivery is one row.")
    group_id: uuid.UUID
    persona_id: uuid.UUID
    context: str = Field(max_length=20)
    role: str | None = Field(default=None, max_length=20)
    change: str = Field(max_length=20, description="added, updated or removed")
    at: datetime = Field(sa_type=UTCDateTime)


class Policy(RecordsModel, table=True):
    """The retention policy of one class. ``version`` is the policy set's version when this row
    last changed; the set's version is the largest."""

    __tablename__ = "policy"

    klass: str = Field(primary_key=True, max_length=30)
    keep_days: int | None = None
    counted_from: str = Field(default="created", max_length=20)
    then: str = Field(default="keep_forever", max_length=20)
    overrides: dict[str, Any] = Field(
        default_factory=empty_dict,
        sa_column=Column(JSON, nullable=False),
        description="group_posts only: group id -> {keep_days, counted_from, then}.",
    )
    version: int = 0
    updated_by: uuid.UUID | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Matter(RecordsModel, table=True):
    """A request or an order the records team answers (an access-to-information request, a
    discovery order): its holds and exports hang from it, and its audit entries name it."""

    __tablename__ = "matter"
    __table_args__ = (Index("ix_matter_status_id", "status", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    reference: str = Field(max_length=100, unique=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="open", max_length=10)
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: uuid.UUID | None = None
    close_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Hold(RecordsModel, table=True):
    """A legal hold of a matter. ``custodians`` are account ids as the officer named them; the
    personas identity resolved for them are ``HoldPersona`` rows."""

    __tablename__ = "hold"
    __table_args__ = (Index("ix_hold_matter_status", "matter_id", "status"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    matter_id: uuid.UUID = Field(index=True)
    custodians: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    group_ids: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    date_from: datetime = Field(sa_type=UTCDateTime)
    date_to: datetime | None = Field(default=None, sa_type=UTCDateTime)
    terms: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="active", max_length=10)
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    released_by: uuid.UUID | None = None
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    release_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class HoldPersona(RecordsModel, table=True):
    """A persona a hold covers: one of a custodian's, as identity resolved it."""

    __tablename__ = "hold_persona"
    __table_args__ = (PrimaryKeyConstraint("hold_id", "persona_id"),)

    hold_id: uuid.UUID
    persona_id: uuid.UUID = Field(index=True)
    account_id: uuid.UUID
    context: str = Field(max_length=20)


class HoldGroup(RecordsModel, table=True):
    __tablename__ = "hold_group"
    __table_args__ = (PrimaryKeyConstraint("hold_id", "group_id"),)

    hold_id: uuid.UUID
    group_id: uuid.UUID = Field(index=True)


class HoldTerm(RecordsModel, table=True):
    """A hold's term as the SQL condition of ``holding`` matches it: ``pattern`` is the term
    lower-cased, its LIKE wildcards escaped, between ``%`` (``Hold.terms`` keeps it as given)."""

    __tablename__ = "hold_term"
    __table_args__ = (PrimaryKeyConstraint("hold_id", "pattern"),)

    hold_id: uuid.UUID
    pattern: str = Field(max_length=300)


class PolicySet(RecordsModel, table=True):
    """The version of the policy set, one row: a change updates it only from the version the
    officer read (a conditional update), so of two changes made from one version one wins."""

    __tablename__ = "policy_set"

    id: int = Field(default=1, primary_key=True)
    version: int = 0


class RunLock(RecordsModel, table=True):
    """A lease on a kind of run (``disposition``): taken by a conditional update, renewed at each
    batch, so two runs never overlap and a run whose process died is taken over once its lease
    has run out."""

    __tablename__ = "run_lock"

    name: str = Field(primary_key=True, max_length=30)
    holder: uuid.UUID | None = None
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)


_ACTIVE_EXPORT = "status IN ('queued', 'running')"


class Export(RecordsModel, table=True):
    """An export job and its package. A matter's export has ``matter_id``; a persona's own
    (``/api/v1/me/export``) has ``owner_id`` instead. ``lease_until`` is the running worker's
    lease: past it, another worker starts the job again. ``attempts`` counts the workers that
    took it, and is the fencing token of the one holding the lease.

    One matter, and one owner, has at most one export queued or running: the two partial
    unique indexes say so in the database, so two requests at once make one job."""

    __tablename__ = "export"
    __table_args__ = (
        Index("ix_export_status_lease", "status", "lease_until"),
        Index("ix_export_matter_id", "matter_id", "id"),
        Index("ix_export_owner_id", "owner_id", "id"),
        Index(
            "uq_export_matter_active",
            "matter_id",
            unique=True,
            sqlite_where=text(_ACTIVE_EXPORT),
            postgresql_where=text(_ACTIVE_EXPORT),
        ),
        Index(
            "uq_export_owner_active",
            "owner_id",
            unique=True,
            sqlite_where=text(_ACTIVE_EXPORT),
            postgresql_where=text(_ACTIVE_EXPORT),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    matter_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    requested_by: uuid.UUID
    scope: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    as_of: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(
        default="queued", max_length=10, description="queued, running, ready, failed, expired"
    )
    counted: int = 0
    total: int | None = None
    attempts: int = 0
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    path: str | None = Field(default=None, max_length=500)
    size: int | None = Field(default=None, sa_type=BigInteger)
    sha256: str | None = Field(default=None, max_length=64)
    manifest: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    redacted: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Download(RecordsModel, table=True):
    """A download of an export's package: its chain of custody after it was written."""

    __tablename__ = "download"
    __table_args__ = (Index("ix_download_export_id", "export_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    export_id: uuid.UUID
    by: uuid.UUID
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Disposition(RecordsModel, table=True):
    """A disposition certificate: one run of disposition."""

    __tablename__ = "disposition"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    policies: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    cutoffs: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    counts: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    held: list[str] = Field(
        default_factory=empty_list,
        sa_column=Column(JSON, nullable=False),
        description="Operational classes not disposed of because an active hold reaches past their cut-off.",
    )
    digest: str = Field(default="", max_length=64, description="SHA-256 of the sorted ids destroyed.")
    status: str = Field(default="running", max_length=10, description="running, finished, failed or aborted")
    started_by: uuid.UUID | None = Field(default=None, description="The officer; null for the worker.")


class AuditEntry(RecordsModel, table=True):
    """One call to the records API, or one thing disposition did: who, which matter, what."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_matter", "matter_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    officer_id: uuid.UUID | None = Field(default=None, description="Null for disposition's own entries.")
    action: str = Field(max_length=60)
    matter_id: uuid.UUID | None = None
    details: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
