"""Feed's public contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kit.text import MultiLineText

Audience = Literal["organisation", "followers", "group"]
Body = Annotated[
    str, Field(min_length=1, max_length=5000, description="Up to 5,000 characters."), MultiLineText
]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body
    audience: Audience = "organisation"
    group_id: uuid.UUID | None = Field(default=None, description="Required when audience is `group`.")

    @model_validator(mode="after")
    def _group_matches_audience(self) -> PostCreate:
        if (self.audience == "group") != (self.group_id is not None):
            raise ValueError("group_id is required with audience 'group' and only then")
        return self


class AuthorPublic(BaseModel):
    id: uuid.UUID
    handle: str | None
    display_name: str | None


class PostPublic(BaseModel):
    id: uuid.UUID
    author: AuthorPublic
    context: Literal["professional", "personal"]
    audience: Audience
    group_id: uuid.UUID | None
    body: str
    created_at: datetime
    updated_at: datetime


class FollowPublic(BaseModel):
    persona_id: uuid.UUID
    handle: str | None
    display_name: str | None
    since: datetime
