"""Groups' tables, on its own registry."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.db import UTCDateTime, new_metadata
from kit.defaults import empty_list, new_id, utcnow
from kit.outbox import OutboxTables


class GroupsModel(SQLModel, registry=registry(metadata=new_metadata())):
    pass


outbox_tables = OutboxTables(GroupsModel.metadata)


class Group(GroupsModel, table=True):
    __table_args__ = (UniqueConstraint("context", "handle", name="uq_group_context_handle"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    context: str = Field(max_length=20, index=True)
    name: str = Field(max_length=100)
    handle: str = Field(max_length=30)
    purpose: str = Field(max_length=500)
    description: str | None = Field(default=None, max_length=5000)
    tags: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    visibility: str = Field(max_length=10)
    objective: str | None = Field(default=None, max_length=1000)
    audience: str | None = Field(default=None, max_length=500)
    success_indicators: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    review_at: date | None = None
    stewards: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    # BCP 47: declared by its owners, else detected from the purpose and charter; how the
    # search index stems the group's text (services/groups/search.py)
    lang: str | None = Field(default=None, max_length=35)
    member_count: int = 0
    created_by: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # set by moderation's events (services/groups/moderation.py): 'hidden' or 'removed'
    moderation: str | None = Field(default=None, max_length=10)
    # the time of the moderation event applied last: an older one arriving late is ignored
    moderated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # the group's image, the file media keeps (decision 0036), as media described it when it
    # was attached (a MediaAttachment); media serves it to those who see the group
    image: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )


class Membership(GroupsModel, table=True):
    __table_args__ = (UniqueConstraint("group_id", "persona_id", name="uq_membership_group_persona"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    group_id: uuid.UUID = Field(foreign_key="group.id", ondelete="CASCADE")
    persona_id: uuid.UUID = Field(index=True)
    role: str = Field(max_length=20)
    joined_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JoinRequest(GroupsModel, table=True):
    """One request per persona and closed group; a decided request can be renewed."""

    __tablename__ = "join_request"
    __table_args__ = (UniqueConstraint("group_id", "persona_id", name="uq_join_request_group_persona"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    group_id: uuid.UUID = Field(foreign_key="group.id", ondelete="CASCADE")
    persona_id: uuid.UUID = Field(index=True)
    status: str = Field(max_length=20)
    message: str | None = Field(default=None, max_length=500)
    response: str | None = Field(default=None, max_length=500)
    decided_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Invitation(GroupsModel, table=True):
    """One invitation per persona and group; a declined or revoked one can be renewed."""

    __table_args__ = (UniqueConstraint("group_id", "persona_id", name="uq_invitation_group_persona"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    group_id: uuid.UUID = Field(foreign_key="group.id", ondelete="CASCADE")
    persona_id: uuid.UUID = Field(index=True)
    invited_by: uuid.UUID
    status: str = Field(max_length=20)
    message: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Activity(GroupsModel, table=True):
    """A post, comment or reaction in a group, from the feed's events; the history that group
    health is computed from. ``ref`` names the item so a redelivered event changes nothing."""

    __table_args__ = (
        UniqueConstraint("kind", "ref", name="uq_activity_kind_ref"),
        Index("ix_activity_group_occurred", "group_id", "occurred_at"),
        Index("ix_activity_post", "post_id"),
        Index("ix_activity_occurred_at", "occurred_at"),  # retention
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    group_id: uuid.UUID = Field(foreign_key="group.id", ondelete="CASCADE")
    kind: str = Field(max_length=10)
    ref: str = Field(max_length=120)
    post_id: uuid.UUID
    actor_id: uuid.UUID
    post_author_id: uuid.UUID | None = None
    post_created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    occurred_at: datetime = Field(sa_type=UTCDateTime)


class PersonaReplica(GroupsModel, table=True):
    """What groups knows of a persona, kept up to date from identity's events."""

    __tablename__ = "persona_replica"

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    status: str = Field(max_length=20)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class IdempotencyKey(GroupsModel, table=True):
    """The first answer to a create sent with an ``Idempotency-Key``, per persona."""

    __tablename__ = "idempotency_key"

    persona_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)
    status_code: int
    response: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
