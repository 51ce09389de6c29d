"""Groups' public contract."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kit.text import Handle, MultiLineText, SingleLineText, Tag

Visibility = Literal["open", "closed", "secret"]
Role = Literal["owner", "moderator", "member"]
Name = Annotated[str, Field(min_length=1, max_length=100), SingleLineText]
Purpose = Annotated[
    str,
    Field(
        min_length=10,
        max_length=500,
        description="Why the group exists, as a sentence (10 to 500 characters).",
        examples=["Share what we learn while moving the agency's services to the cloud."],
    ),
    MultiLineText,
]
LongText = Annotated[str, Field(min_length=1, max_length=5000), MultiLineText]
Indicator = Annotated[str, Field(min_length=1, max_length=200), SingleLineText]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Charter(Strict):
    objective: Annotated[str, Field(min_length=1, max_length=1000), MultiLineText] | None = None
    audience: Annotated[str, Field(min_length=1, max_length=500), MultiLineText] | None = None
    success_indicators: list[Indicator] = Field(default_factory=list, max_length=20)
    review_at: date | None = None
    stewards: list[uuid.UUID] = Field(
        default_factory=list, max_length=20, description="Persona ids; the creator when empty."
    )

    @field_validator("review_at")
    @classmethod
    def _review_in_range(cls, value: date | None) -> date | None:
        if value is not None and not (2000 <= value.year <= 2200):
            raise ValueError("must be a date between the years 2000 and 2200")
        return value


class GroupCreate(Strict):
    name: Name
    handle: Handle
    purpose: Purpose
    description: LongText | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    visibility: Visibility = "open"
    charter: Charter = Field(default_factory=Charter)


class GroupUpdate(Strict):
    name: Name | None = None
    purpose: Purpose | None = None
    description: LongText | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    visibility: Visibility | None = None
    charter: Charter | None = None


class CharterPublic(BaseModel):
    objective: str | None
    audience: str | None
    success_indicators: list[str]
    review_at: date | None
    stewards: list[uuid.UUID]


class GroupPublic(BaseModel):
    id: uuid.UUID
    context: Literal["professional", "personal"]
    name: str
    handle: str
    purpose: str
    description: str | None
    tags: list[str]
    visibility: Visibility
    charter: CharterPublic
    member_count: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    my_role: Role | None = Field(default=None, description="The caller's role, if a member.")


class MemberPublic(BaseModel):
    persona_id: uuid.UUID
    handle: str | None
    display_name: str | None
    role: Role
    joined_at: datetime


class MembershipPublic(BaseModel):
    group_id: uuid.UUID
    persona_id: uuid.UUID
    role: Role
    joined_at: datetime
