"""Feed's public contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic.json_schema import SkipJsonSchema

from kit.text import HttpsUrl, IsoDateTime, MultiLineText, SingleLineText

Audience = Literal["organisation", "followers", "group"]
ReactionKind = Literal["like", "celebrate", "support", "insightful", "curious"]
Body = Annotated[
    str, Field(min_length=1, max_length=5000, description="Up to 5,000 characters."), MultiLineText
]
CommentBody = Annotated[
    str, Field(min_length=1, max_length=2000, description="Up to 2,000 characters."), MultiLineText
]
TagName = Annotated[
    str,
    Field(min_length=1, max_length=40, pattern=r"^[^\W][\w-]*$", description="A tag without its `#`."),
]
MAX_LINKS = 5


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpsUrl
    title: Annotated[str, Field(min_length=1, max_length=200), SingleLineText] | None = None


class LinkPublic(BaseModel):
    url: str
    title: str | None = None


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body
    audience: Audience = "organisation"
    group_id: uuid.UUID | None = Field(default=None, description="Required when audience is `group`.")
    links: list[LinkIn] = Field(default_factory=list, max_length=MAX_LINKS)
    pinned_until: IsoDateTime | None = Field(
        default=None,
        description="Makes the post an announcement that leads every home timeline of the context "
        "until then. Administrators and the `communications` role only; audience `organisation`.",
    )

    @model_validator(mode="after")
    def _group_matches_audience(self) -> PostCreate:
        if (self.audience == "group") != (self.group_id is not None):
            raise ValueError("group_id is required with audience 'group' and only then")
        if self.pinned_until is not None:
            if self.pinned_until.tzinfo is None:
                raise ValueError("pinned_until needs a time zone")
            if self.audience != "organisation":
                raise ValueError("only posts to the organisation are announcements")
        return self


class PostUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body | None = None
    links: list[LinkIn] | None = Field(default=None, max_length=MAX_LINKS)
    pinned_until: IsoDateTime | None = Field(
        default=None, description="Administrators and the `communications` role only."
    )

    @model_validator(mode="after")
    def _timezone(self) -> PostUpdate:
        if self.pinned_until is not None and self.pinned_until.tzinfo is None:
            raise ValueError("pinned_until needs a time zone")
        return self


class AuthorPublic(BaseModel):
    id: uuid.UUID
    handle: str | None
    display_name: str | None


class MentionPublic(BaseModel):
    id: uuid.UUID
    handle: str


class ReactionsPublic(BaseModel):
    counts: dict[ReactionKind, int] = Field(description="How many personas reacted, per kind.")
    mine: list[ReactionKind] = Field(description="The caller's own reactions.")


class PostPublic(BaseModel):
    id: uuid.UUID
    author: AuthorPublic
    context: Literal["professional", "personal"]
    audience: Audience
    group_id: uuid.UUID | None
    body: str
    mentions: list[MentionPublic]
    tags: list[str]
    links: list[LinkPublic]
    pinned: bool = Field(description="An announcement still pinned, or a post its group's owner pinned.")
    pinned_until: datetime | None
    reactions: ReactionsPublic
    comment_count: int
    created_at: datetime
    updated_at: datetime
    edited_at: datetime | None


class RevisionPublic(BaseModel):
    id: uuid.UUID
    body: str
    links: list[LinkPublic]
    replaced_at: datetime = Field(description="When an edit replaced this text.")


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: CommentBody
    parent_id: uuid.UUID | None = Field(
        default=None, description="A top-level comment of the same post: replies go one level deep."
    )


class CommentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: CommentBody


class CommentPublic(BaseModel):
    id: uuid.UUID
    post_id: uuid.UUID
    parent_id: uuid.UUID | None
    author: AuthorPublic
    body: str
    mentions: list[MentionPublic]
    reply_count: int
    created_at: datetime
    updated_at: datetime
    edited_at: datetime | None


class NotificationPublic(BaseModel):
    id: uuid.UUID
    kind: Literal["mention", "comment", "reply"]
    actor: AuthorPublic
    post_id: uuid.UUID
    comment_id: uuid.UUID | None
    created_at: datetime
    read: bool


class NotificationsRead(BaseModel):
    """Either ``ids`` or ``all`` (not both); ``all: false`` marks nothing."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["ids"]}, {"required": ["all"]}]},
    )

    ids: Annotated[list[uuid.UUID], Field(max_length=100)] | SkipJsonSchema[None] = None
    all: StrictBool = Field(default=False, description="Mark every notification read.")

    @model_validator(mode="after")
    def _one_of(self) -> NotificationsRead:
        if "ids" not in self.model_fields_set and "all" not in self.model_fields_set:
            raise ValueError("give ids, or all=true")
        if "ids" in self.model_fields_set and "all" in self.model_fields_set:
            raise ValueError("give ids or all, not both")
        if "ids" in self.model_fields_set and self.ids is None:
            raise ValueError("ids cannot be null")
        return self


class ReadResult(BaseModel):
    marked: int


class FollowPublic(BaseModel):
    persona_id: uuid.UUID
    handle: str | None
    display_name: str | None
    since: datetime
