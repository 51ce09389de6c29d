"""Moderation's tables, on its own registry (decision 0032, "Tables").

Moderation holds no account id, no email and no link between a person's two personas: it knows
personas, groups and roles only as the events of their owners describe them (docs/boundary.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, PrimaryKeyConstraint, Text, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.db import UTCDateTime, new_metadata
from kit.defaults import empty_list, new_id, utcnow
from kit.outbox import OutboxTables


class ModerationModel(SQLModel, registry=registry(metadata=new_metadata())):
    pass


outbox_tables = OutboxTables(ModerationModel.metadata)


class PersonaReplica(ModerationModel, table=True):
    """What moderation knows of a persona, from identity's ``persona.*`` events. A reporter's
    row is locked while it files, so that parallel filings cannot pass the hourly limit."""

    __tablename__ = "persona_replica"

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    status: str = Field(max_length=20)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class StaffReplica(ModerationModel, table=True):
    """The moderation roles (``admin``, ``moderator``) of a professional persona, from
    ``internal.staff.updated``. A persona without a role has no row."""

    __tablename__ = "staff_replica"

    persona_id: uuid.UUID = Field(primary_key=True)
    roles: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_type=UTCDateTime)


class GroupReplica(ModerationModel, table=True):
    """A group's context and visibility, from groups' ``group.*`` events."""

    __tablename__ = "group_replica"

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    visibility: str = Field(max_length=10)
    moderation: str | None = Field(default=None, max_length=10)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class GroupRoleReplica(ModerationModel, table=True):
    """Who owns or moderates a group, from ``membership.*`` events; plain members are not kept."""

    __tablename__ = "group_role_replica"
    __table_args__ = (PrimaryKeyConstraint("group_id", "persona_id"),)

    group_id: uuid.UUID
    persona_id: uuid.UUID = Field(index=True)
    role: str = Field(max_length=20)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Report(ModerationModel, table=True):
    """A report by a persona (``report``), by the held-content terms (``system``) or an appeal of
    an action (``appeal``). ``version`` guards every change: each is one conditional UPDATE."""

    __table_args__ = (
        Index(
            "uq_report_open_per_reporter",
            "reporter_id",
            "target_type",
            "target_id",
            unique=True,
            sqlite_where=text("kind = 'report' AND status <> 'resolved'"),
            postgresql_where=text("kind = 'report' AND status <> 'resolved'"),
        ),
        Index("ix_report_status_id", "status", "id"),
        Index("ix_report_group_status_id", "group_id", "status", "id"),
        Index("ix_report_reporter_created", "reporter_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(max_length=10)
    reporter_id: uuid.UUID | None = None
    target_type: str = Field(max_length=10)
    target_id: uuid.UUID
    context: str = Field(max_length=20)
    subject_id: uuid.UUID | None = Field(default=None, index=True)
    group_id: uuid.UUID | None = None
    category: str = Field(max_length=20)
    rules: list[int] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    conduct_version: int = 0
    # the reporter's comment (up to 1000 characters), or an appeal's text (up to 2000)
    comment: str | None = Field(default=None, max_length=2000)
    status: str = Field(default="open", max_length=10)
    assignee_id: uuid.UUID | None = None
    resolved_by: uuid.UUID | None = None
    action: str | None = Field(default=None, max_length=20)
    reason: str | None = Field(default=None, max_length=2000)
    appeal_of: uuid.UUID | None = Field(default=None, index=True)
    excluded_moderator_id: uuid.UUID | None = None
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    first_action_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class Evidence(ModerationModel, table=True):
    """The reported content as its owner returned it at filing, kept for the record."""

    __table_args__ = (PrimaryKeyConstraint("report_id", "ordinal"),)

    report_id: uuid.UUID = Field(foreign_key="report.id", ondelete="CASCADE")
    ordinal: int
    item_type: str = Field(max_length=10)
    item_id: uuid.UUID
    # a comment's post (a post's own id for a post): what an action's event names
    post_id: uuid.UUID | None = None
    author_id: uuid.UUID | None = None
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    links: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    captured_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Action(ModerationModel, table=True):
    """What a moderator did about a report. Append-only, but for its lifting (``lifted_at``, an
    expiry reached) and its reversal (``reverted_at``, ``reverted_by``, an upheld appeal)."""

    __table_args__ = (Index("ix_action_due", "until", "lifted_at", "reverted_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    report_id: uuid.UUID = Field(foreign_key="report.id", index=True)
    moderator_id: uuid.UUID | None = None
    as_role: str = Field(max_length=10)
    group_id: uuid.UUID | None = None
    kind: str = Field(max_length=20)
    target_type: str = Field(max_length=10)
    target_id: uuid.UUID
    # a comment's post, named by the events of an action on the comment and of its undo
    post_id: uuid.UUID | None = None
    subject_id: uuid.UUID | None = None
    context: str = Field(max_length=20)
    reason: str = Field(max_length=2000)
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reverted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reverted_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Notice(ModerationModel, table=True):
    """What a persona is told of an action taken against it or its content: never who reported
    it, never who acted."""

    __table_args__ = (Index("ix_notice_persona_id", "persona_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    persona_id: uuid.UUID
    action_id: uuid.UUID = Field(foreign_key="action.id", index=True)
    category: str = Field(max_length=20)
    rules: list[int] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    kind: str = Field(max_length=20)
    target_type: str = Field(max_length=10)
    target_id: uuid.UUID
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    context: str = Field(max_length=20)
    appeal_by: datetime = Field(sa_type=UTCDateTime)
    appeal_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConductVersion(ModerationModel, table=True):
    """One version of the organisation's code of conduct; the highest is in force."""

    __tablename__ = "conduct_version"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    rules: list[dict[str, Any]] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Term(ModerationModel, table=True):
    """A term that holds matching posts and comments of its context for review."""

    __table_args__ = (UniqueConstraint("context", "term", "match", name="uq_term_context_term_match"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    context: str = Field(max_length=20)
    term: str = Field(max_length=100)
    match: str = Field(max_length=10)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TermSet(ModerationModel, table=True):
    """The version of each context's term list, raised by every change and sent to feed."""

    __tablename__ = "term_set"

    context: str = Field(primary_key=True, max_length=20)
    version: int = 0
