"""Feed's tables, on its own registry. Personas, groups and memberships are replicas kept up
to date from identity's and groups' events."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.db import UTCDateTime, new_metadata
from kit.ids import new_id
from kit.outbox import OutboxTables
from kit.timeutil import utcnow


class FeedModel(SQLModel, registry=registry(metadata=new_metadata())):
    pass


outbox_tables = OutboxTables(FeedModel.metadata)


class Post(FeedModel, table=True):
    __table_args__ = (
        Index("ix_post_author_id_id", "author_id", "id"),
        Index("ix_post_group_id_id", "group_id", "id"),
        Index("ix_post_context_audience_id", "context", "audience", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    author_id: uuid.UUID
    context: str = Field(max_length=20)
    audience: str = Field(max_length=20)
    group_id: uuid.UUID | None = None
    body: str = Field(max_length=5000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Follow(FeedModel, table=True):
    follower_id: uuid.UUID = Field(primary_key=True)
    followee_id: uuid.UUID = Field(primary_key=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PersonaReplica(FeedModel, table=True):
    __tablename__ = "persona_replica"

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    status: str = Field(max_length=20)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class GroupReplica(FeedModel, table=True):
    __tablename__ = "group_replica"

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    visibility: str = Field(max_length=10)
    archived: bool = False
    updated_at: datetime = Field(sa_type=UTCDateTime)


class MembershipReplica(FeedModel, table=True):
    __tablename__ = "membership_replica"

    persona_id: uuid.UUID = Field(primary_key=True)
    group_id: uuid.UUID = Field(primary_key=True, index=True)
