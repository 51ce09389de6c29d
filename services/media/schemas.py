"""Media's request and response models, and the mappers from a row to them (decision 0036).

Two shapes of a media go out:

- ``MediaPublic``, what ``/api/v1/media`` answers. Its uploader sees everything of it; any
  other reader (who sees its owner) sees neither ``sha256`` (the hash of the bytes as sent,
  which for a photo includes what processing stripped, and which would pair two uploads of one
  file in both contexts) nor ``created_at`` (when the uploader sent it): both are null.
  ``url`` and ``preview_url`` are signed links, present once the media is ready and only
  while it may be served.
- ``MediaAttachment``, what an owner (feed, identity, groups) keeps and shows on its post,
  comment, persona or group: no status, no hash, no uploader, no link (a reader asks media for
  the media, whose answer carries fresh links).

``size`` in ``MediaPublic`` is the size of the bytes received; in ``MediaAttachment`` that of
the stored file, what a reader downloads (an image loses its metadata in processing).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kit.text import MultiLineText
from services.media import links
from services.media.models import Media

Status = Literal["processing", "ready", "rejected"]
MediaType = Literal["image", "document", "other"]
OwnerKind = Literal["post", "comment", "avatar", "group_image"]

MAX_PER_OWNER: dict[str, int] = {"post": 4, "comment": 1, "avatar": 1, "group_image": 1}
"""How many media one owner takes, at most."""

DESCRIPTION_LENGTH = 1500
Description = Annotated[
    str,
    Field(
        min_length=1,
        max_length=DESCRIPTION_LENGTH,
        description="Alternative text: what the media shows, for who cannot see it (1 to 1500 characters).",
    ),
    MultiLineText,
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Preview(BaseModel):
    width: int
    height: int
    content_type: str


class MediaPublic(BaseModel):
    id: uuid.UUID
    status: Status = Field(
        description="`processing` until the worker is done with it, then `ready` or `rejected` "
        "(see `reason`)."
    )
    reason: str | None = Field(description="Why it was rejected.")
    media_type: MediaType = Field(description="`image`, `document` or `other`, decided from the bytes.")
    content_type: str = Field(
        description="Decided from the bytes once processed (until then, the type the client declared)."
    )
    filename: str
    description: str | None
    size: int = Field(description="Bytes received.")
    sha256: str | None = Field(description="SHA-256 of the bytes received; null unless you uploaded it.")
    width: int | None = Field(description="An image's width in pixels, once processed.")
    height: int | None
    preview: Preview | None = Field(description="An image's preview (at most 640 px a side), once processed.")
    url: str | None = Field(
        description="A signed link to the file, valid for minutes; null until ready and while it may "
        "not be served."
    )
    preview_url: str | None = Field(description="A signed link to the preview, likewise.")
    created_at: datetime | None = Field(description="When it was uploaded; null unless you uploaded it.")


class MediaUpdate(Strict):
    """Only the description changes; null clears it."""

    description: Description | None


class MediaAttachment(BaseModel):
    """A media as its owner keeps and shows it."""

    id: uuid.UUID
    media_type: MediaType
    content_type: str
    filename: str
    description: str | None
    size: int = Field(description="Bytes of the stored file.")
    width: int | None
    height: int | None
    preview: bool


class AttachRequest(Strict):
    owner_kind: OwnerKind
    owner_id: uuid.UUID
    persona_id: uuid.UUID = Field(description="Who attaches them: every media must be theirs.")
    media_ids: list[uuid.UUID] = Field(min_length=1, max_length=max(MAX_PER_OWNER.values()))
    post_id: uuid.UUID | None = Field(
        default=None, description="A comment's post (required for a comment; a post's is the post)."
    )
    group_id: uuid.UUID | None = Field(default=None, description="The group the owner is in.")

    @model_validator(mode="after")
    def _within_the_owners_limit(self) -> AttachRequest:
        if len(self.media_ids) > MAX_PER_OWNER[self.owner_kind]:
            raise ValueError(f"a {self.owner_kind} takes at most {MAX_PER_OWNER[self.owner_kind]} media")
        if len(set(self.media_ids)) != len(self.media_ids):
            raise ValueError("media_ids must not repeat an id")
        if self.owner_kind == "comment" and self.post_id is None:
            raise ValueError("a comment's media need its post_id (records classes them with the post)")
        return self


class Attached(BaseModel):
    media: list[MediaAttachment]


class ReleaseRequest(Strict):
    owner_kind: OwnerKind
    owner_id: uuid.UUID
    keep: list[uuid.UUID] = Field(default_factory=list, max_length=10)
    delete: bool = Field(
        default=True,
        description="Delete the media (true), or make them unattached again so the uploader keeps "
        "them (false).",
    )


class Released(BaseModel):
    released: int = Field(description="How many media were deleted or made unattached.")


def served(media: Media) -> bool:
    """Whether the media's file may be served at all: ready and not withdrawn."""
    return media.status == "ready" and media.withdrawn_at is None and media.post_withdrawn_at is None


def media_public(media: Media, *, key: bytes, expires: int, uploader: bool) -> MediaPublic:
    """The media as ``/api/v1/media`` answers it; ``uploader``: whether the reader sent it."""
    preview = None
    if media.preview_key and media.preview_width and media.preview_height and media.preview_content_type:
        preview = Preview(
            width=media.preview_width, height=media.preview_height, content_type=media.preview_content_type
        )
    servable = served(media)
    return MediaPublic(
        id=media.id,
        status=media.status,
        reason=media.reason,
        media_type=media.media_type,
        content_type=media.content_type,
        filename=media.filename,
        description=media.description,
        size=media.size,
        sha256=media.sha256 if uploader else None,
        width=media.width,
        height=media.height,
        preview=preview,
        url=links.link(key, media.id, "file", expires) if servable else None,
        preview_url=links.link(key, media.id, "preview", expires) if servable and preview else None,
        created_at=media.created_at if uploader else None,
    )


def media_attachment(media: Media) -> MediaAttachment:
    return MediaAttachment(
        id=media.id,
        media_type=media.media_type,
        content_type=media.content_type,
        filename=media.filename,
        description=media.description,
        size=media.file_size if media.file_size is not None else media.size,
        width=media.width,
        height=media.height,
        preview=media.preview_key is not None,
    )
