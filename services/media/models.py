"""Media's tables, on its own registry (decision 0036).

A ``Media`` row is one upload: who sent it (a persona, never an account), what the bytes were
decided to be, where the processed file and its preview are kept, and what owns it once
attached (a post, a comment, a persona's avatar, a group's image). Stored files are
content-addressed: a ``Blob`` is one stored file, named by the SHA-256 of its bytes, kept while
a ``Media`` row names it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.db import UTCDateTime, new_metadata
from kit.defaults import random_id, utcnow
from kit.outbox import OutboxTables


class MediaModel(SQLModel, registry=registry(metadata=new_metadata())):
    pass


outbox_tables = OutboxTables(MediaModel.metadata)


class PersonaReplica(MediaModel, table=True):
    """What media knows of a persona, from identity's ``persona.*`` events: enough to check a
    token and to erase a persona's uploads."""

    __tablename__ = "persona_replica"

    id: uuid.UUID = Field(primary_key=True)
    context: str = Field(max_length=20)
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    status: str = Field(max_length=20)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Media(MediaModel, table=True):
    """One upload and what became of it.

    ``status``: ``processing`` (the worker has yet to finish it), ``ready`` or ``rejected``
    (``reason`` says why; its bytes are gone). ``size`` and ``sha256`` are those of the bytes as
    received; ``file_key`` names the stored file (the processed bytes: an image without its
    metadata), ``preview_key`` its preview. ``incoming_key`` names the bytes as received until
    the worker is done with them. ``content_type`` is the type the client declared until the
    worker decides it from the bytes.

    ``owner_kind``/``owner_id`` say what it is attached to; ``post_id`` is the post of a
    post's or a comment's media, ``group_id`` the group it is in, both for records.
    ``withdrawn_at`` is set when its owner is deleted, ``post_withdrawn_at`` when a comment's
    post is: while either is set the media is never served (a comment deleted on its own stays
    withdrawn when its post comes back).
    """

    __tablename__ = "media"
    __table_args__ = (
        Index("ix_media_uploader_created", "uploader_id", "created_at"),
        Index("ix_media_status_lease", "status", "lease_until"),
        Index("ix_media_owner", "owner_kind", "owner_id"),
        Index("ix_media_file_key", "file_key"),
        Index("ix_media_preview_key", "preview_key"),
        Index("ix_media_unattached", "owner_kind", "created_at"),
        Index("ix_media_post", "post_id"),
        Index("ix_media_incoming_key", "incoming_key"),
    )

    id: uuid.UUID = Field(default_factory=random_id, primary_key=True)
    uploader_id: uuid.UUID
    context: str = Field(max_length=20)
    status: str = Field(default="processing", max_length=20)
    reason: str | None = Field(default=None, max_length=200)
    media_type: str = Field(default="other", max_length=20, description="image, document or other")
    content_type: str = Field(default="application/octet-stream", max_length=127)
    filename: str = Field(default="", max_length=255)
    description: str | None = Field(default=None, max_length=1500)
    size: int = Field(ge=0, sa_type=BigInteger)
    sha256: str = Field(max_length=64)
    incoming_key: str | None = Field(default=None, max_length=200)
    file_key: str | None = Field(default=None, max_length=64)
    file_size: int | None = Field(default=None, sa_type=BigInteger)
    preview_key: str | None = Field(default=None, max_length=64)
    preview_size: int | None = Field(default=None, sa_type=BigInteger)
    preview_content_type: str | None = Field(default=None, max_length=127)
    width: int | None = None
    height: int | None = None
    preview_width: int | None = None
    preview_height: int | None = None
    attempts: int = 0
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    owner_kind: str | None = Field(
        default=None, max_length=20, description="post, comment, avatar, group_image"
    )
    owner_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    attached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    post_withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Blob(MediaModel, table=True):
    """A stored key: a file named by the SHA-256 of its bytes, or the ``incoming/<media id>``
    bytes of an upload. A row is written (``touched_at`` now) *before* its bytes are stored and
    again whenever a ``Media`` row comes to name it; the sweeper deletes a key no row names
    (as ``file_key``, ``preview_key`` or ``incoming_key``) once it has not been touched for an
    hour, so bytes being stored are never taken away, and bytes whose media is gone never
    outlive it by much, whoever deleted the media (an event handler has no store at hand)."""

    __tablename__ = "blob"
    __table_args__ = (Index("ix_blob_touched_at", "touched_at"),)

    key: str = Field(primary_key=True, max_length=80)
    size: int = Field(ge=0, sa_type=BigInteger)
    content_type: str = Field(max_length=127)
    touched_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
