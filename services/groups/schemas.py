"""Groups' public contract: request and response models, and the functions that map a
stored row to its one public shape."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from domain.contexts import Context
from domain.handles import Handle
from domain.media import MediaAttachment
from kit.text import Checked, IsoDate, MultiLineText, SingleLineText, Tag
from services.groups.models import Group, Invitation, JoinRequest, Membership, PersonaReplica

Visibility = Literal["open", "closed", "secret"]
Role = Literal["owner", "moderator", "member"]
HealthStatus = Literal["thriving", "quiet", "dormant"]
RequestStatus = Literal["pending", "approved", "rejected", "cancelled"]
InvitationStatus = Literal["pending", "accepted", "declined", "revoked"]
ModerationState = Literal["hidden", "removed"]


_TEXT = r"[^\x00-\x08\x0b-\x1f\x7f-\x9f]"
_WORD = r"[^\s\x00-\x1f\x7f-\x9f]+"
_LETTER = r"[^\s0-9\x00-\x40\x5b-\x60\x7b-\x9f]"
SENTENCE = rf"^(?={_TEXT}*{_LETTER}){_TEXT}*?{_WORD}[ \t\n]+{_WORD}[ \t\n]+{_WORD}{_TEXT}*$"
"""At least three words (separated by spaces, tabs or line breaks) and one letter, no control
characters. The contract publishes this very pattern, so clients can check before sending."""
_SENTENCE = re.compile(SENTENCE)


def _sentence(value: str) -> str:
    if not _SENTENCE.match(value):
        raise ValueError("must be a sentence: three words at least, with letters")
    return value


Name = Annotated[str, Field(min_length=1, max_length=100), SingleLineText]
Purpose = Annotated[
    str,
    Field(
        min_length=10,
        max_length=500,
        description="Why the group exists, as a sentence (10 to 500 characters, three words at least).",
        examples=["Share what we learn while moving the agency's services to the cloud."],
    ),
    MultiLineText,
    Checked(_sentence, SENTENCE),
]
LongText = Annotated[str, Field(min_length=1, max_length=5000), MultiLineText]
Indicator = Annotated[str, Field(min_length=1, max_length=200), SingleLineText]
Message = Annotated[str, Field(min_length=1, max_length=500), MultiLineText]
Objective = Annotated[str, Field(min_length=1, max_length=1000), MultiLineText]
Audience = Annotated[str, Field(min_length=1, max_length=500), MultiLineText]


Lang = Annotated[
    str,
    Field(
        min_length=1,
        max_length=35,
        description="The language of the group's text, a BCP 47 tag (`en`, `fr-CA`); detected from "
        "the purpose and charter when left out. Search stems English and French words.",
        examples=["en"],
    ),
]
Indicators = Annotated[list[Indicator], Field(max_length=20)]
Stewards = Annotated[list[uuid.UUID], Field(min_length=1, max_length=20)]
Tags = Annotated[list[Tag], Field(max_length=20)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Charter(Strict):
    """A new group's charter: what it sets out to do, for whom, and when that is reviewed are
    required, as the purpose is; indicators and stewards may come later."""

    objective: Objective
    audience: Audience
    success_indicators: list[Indicator] = Field(default_factory=list, max_length=20)
    review_at: IsoDate = Field(
        description="When the owners review whether the group still serves its purpose."
    )
    stewards: list[uuid.UUID] = Field(
        default_factory=list, max_length=20, description="Persona ids; the creator when empty."
    )


class CharterUpdate(Strict):
    """Fields left out stay as they are; none can be cleared (a group created before the
    charter was required may still show nulls until they are set)."""

    objective: Objective | SkipJsonSchema[None] = None
    audience: Audience | SkipJsonSchema[None] = None
    success_indicators: Indicators | SkipJsonSchema[None] = None
    review_at: IsoDate | SkipJsonSchema[None] = None
    stewards: Stewards | SkipJsonSchema[None] = None

    @field_validator("objective", "audience", "success_indicators", "review_at", "stewards")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave it out to keep it")
        return value


class GroupCreate(Strict):
    name: Name
    handle: Handle
    purpose: Purpose
    description: LongText | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    visibility: Visibility = "open"
    charter: Charter
    lang: Lang | None = None


class GroupUpdate(Strict):
    """Fields left out stay as they are."""

    name: Name | SkipJsonSchema[None] = None
    purpose: Purpose | SkipJsonSchema[None] = None
    description: LongText | None = None
    tags: Tags | SkipJsonSchema[None] = None
    visibility: Visibility | SkipJsonSchema[None] = None
    charter: CharterUpdate | SkipJsonSchema[None] = None
    lang: Lang | None = Field(default=None, description="`null` detects it from the text again.")

    @field_validator("name", "purpose", "tags", "visibility", "charter")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be cleared")
        return value


class MediaChoice(Strict):
    """The upload to show: the id `POST /api/v1/media` answered, once the upload is ready. It
    must be the caller's own upload, an image, and attached to nothing else."""

    media_id: uuid.UUID


class CharterPublic(BaseModel):
    """Null ``objective``, ``audience`` or ``review_at`` only on a group created before its
    charter was required."""

    objective: str | None
    audience: str | None
    success_indicators: list[str]
    review_at: date | None
    stewards: list[uuid.UUID]


class GroupPublic(BaseModel):
    id: uuid.UUID
    context: Context
    name: str
    handle: str
    purpose: str
    description: str | None
    tags: list[str]
    visibility: Visibility
    charter: CharterPublic
    lang: str | None = Field(description="BCP 47, declared or detected; null when unknown.")
    member_count: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    my_role: Role | None = Field(default=None, description="The caller's role, if a member.")
    moderation: ModerationState | None = Field(
        default=None,
        description="'hidden' while moderation hides the group: only its owners see it, read-only.",
    )
    image: MediaAttachment | None = Field(
        default=None,
        description="The picture its owners set with `PUT /api/v1/groups/{id}/image`; null when none is.",
    )


class GroupSearchItem(GroupPublic):
    """A group found by a search: the directory's shape, and where the query matched."""

    highlight: str = Field(
        description="An HTML-escaped excerpt of the name, purpose, tags or charter, each matching "
        "word between <mark> and </mark>."
    )


class GroupSummary(BaseModel):
    id: uuid.UUID
    handle: str
    name: str
    visibility: Visibility
    archived: bool


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


class MyMembershipPublic(BaseModel):
    group: GroupSummary
    role: Role
    joined_at: datetime


class MemberUpdate(Strict):
    role: Role


class JoinRequestCreate(Strict):
    message: Message | None = None


class Decision(Strict):
    message: Message | None = Field(default=None, description="Shown to the requester.")


class JoinRequestPublic(BaseModel):
    group_id: uuid.UUID
    persona_id: uuid.UUID
    handle: str | None = None
    display_name: str | None = None
    status: RequestStatus
    message: str | None
    response: str | None
    created_at: datetime
    decided_at: datetime | None


class InvitationCreate(Strict):
    persona_id: uuid.UUID
    message: Message | None = None


class InvitationPublic(BaseModel):
    group: GroupSummary
    persona_id: uuid.UUID
    invited_by: uuid.UUID
    status: InvitationStatus
    message: str | None
    created_at: datetime
    decided_at: datetime | None


class WeekActivity(BaseModel):
    start: datetime = Field(description="Exclusive.")
    end: datetime = Field(description="Inclusive.")
    posts: int
    comments: int


class GroupHealth(BaseModel):
    """How each figure is computed: docs/groups-health.md."""

    group_id: uuid.UUID
    computed_at: datetime
    status: HealthStatus
    member_count: int
    active_members: int = Field(description="Members with a post, comment or reaction in the last 30 days.")
    active_share: float = Field(description="active_members / member_count, 0 to 1.")
    weekly: list[WeekActivity] = Field(description="The last 8 weeks, oldest first.")
    median_first_reply_seconds: float | None
    unanswered_posts: int
    contributor_concentration: float | None
    newcomers: int
    newcomers_retained: int
    newcomer_retention: float | None
    last_activity_at: datetime | None
    days_since_last_activity: int | None
    review_at: date | None
    review_due: bool


def group_public(group: Group, role: str | None = None) -> GroupPublic:
    return GroupPublic(
        id=group.id,
        context=group.context,
        name=group.name,
        handle=group.handle,
        purpose=group.purpose,
        description=group.description,
        tags=group.tags,
        visibility=group.visibility,
        charter=CharterPublic(
            objective=group.objective,
            audience=group.audience,
            success_indicators=group.success_indicators,
            review_at=group.review_at,
            stewards=[uuid.UUID(s) for s in group.stewards],
        ),
        lang=group.lang,
        member_count=group.member_count,
        created_at=group.created_at,
        updated_at=group.updated_at,
        archived_at=group.archived_at,
        my_role=role,
        moderation=group.moderation,
        image=None if group.image is None else MediaAttachment.model_validate(group.image),
    )


def group_search_item(group: Group, role: str | None, highlight: str) -> GroupSearchItem:
    return GroupSearchItem(**group_public(group, role).model_dump(), highlight=highlight)


def group_summary(group: Group) -> GroupSummary:
    return GroupSummary(
        id=group.id,
        handle=group.handle,
        name=group.name,
        visibility=group.visibility,
        archived=group.archived_at is not None,
    )


def member_public(m: Membership, handle: str | None, display_name: str | None) -> MemberPublic:
    return MemberPublic(
        persona_id=m.persona_id, handle=handle, display_name=display_name, role=m.role, joined_at=m.joined_at
    )


def membership_public(m: Membership) -> MembershipPublic:
    return MembershipPublic(group_id=m.group_id, persona_id=m.persona_id, role=m.role, joined_at=m.joined_at)


def my_membership_public(m: Membership, group: Group) -> MyMembershipPublic:
    return MyMembershipPublic(group=group_summary(group), role=m.role, joined_at=m.joined_at)


def join_request_public(r: JoinRequest, replica: PersonaReplica | None = None) -> JoinRequestPublic:
    return JoinRequestPublic(
        group_id=r.group_id,
        persona_id=r.persona_id,
        handle=replica.handle if replica else None,
        display_name=replica.display_name if replica else None,
        status=r.status,
        message=r.message,
        response=r.response,
        created_at=r.created_at,
        decided_at=r.decided_at,
    )


def invitation_public(i: Invitation, group: Group) -> InvitationPublic:
    return InvitationPublic(
        group=group_summary(group),
        persona_id=i.persona_id,
        invited_by=i.invited_by,
        status=i.status,
        message=i.message,
        created_at=i.created_at,
        decided_at=i.decided_at,
    )


class GroupForModeration(BaseModel):
    """A reported group as moderation keeps it for the report's evidence (decision 0032): the
    answer of the internal lookup, never published in the API."""

    group_id: uuid.UUID
    context: Context
    name: str
    purpose: str
    owner_ids: list[uuid.UUID]
    created_at: datetime


def group_for_moderation(group: Group, owner_ids: list[uuid.UUID]) -> GroupForModeration:
    return GroupForModeration(
        group_id=group.id,
        context=group.context,
        name=group.name,
        purpose=group.purpose,
        owner_ids=owner_ids,
        created_at=group.created_at,
    )
