"""The catalogue of public events: every type a webhook subscriber can receive, the model of its
data, the CloudEvents envelope it arrives in, the OpenAPI 3.1 ``webhooks`` object that documents
them all, and the events of the stream (``GET /api/v1/stream``). docs/events.md is its prose.

The services publish these events through their outboxes; identity receives them all and sends
each, once per endpoint that wants it, as ``webhook_data`` makes it: the data read into the
type's model (fields the model does not name stay behind: what a service tells the others is
not all for integrators), then ``for_subscribers``, which withholds what a subscriber may not
read. A subscriber is an integrator, acting for the organisation, not a person: it is sent what
any persona of the event's context may read, and never a personal persona's name or words,
since no client or administrator reads the personal context (docs/events.md, "Who sees what").
A type that is not here, or data that does not fit its model, reaches no webhook.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema

from domain.contexts import Context

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
REF = "#/components/schemas/{model}"


class EventData(BaseModel):
    """The data of one public event. Fields a publisher adds for the services alone are ignored."""

    model_config = ConfigDict(extra="ignore")

    def for_subscribers(self) -> Self:
        """The data as a webhook subscriber receives it: by default all of it."""
        return self


EventContext = Annotated[
    Context, Field(description="The context of what the event is about: `professional` or `personal`.")
]


# Posts, comments, reactions (feed)


class PostLink(BaseModel):
    url: str = Field(max_length=2000)
    title: str | None = Field(default=None, max_length=200)


class PostContent(BaseModel):
    """What a post says, for a subscriber who may read it (docs/events.md, "Who sees what"). As
    bounded as the post itself: 5,000 characters of text, 5 links, 4 files."""

    author_handle: str = Field(max_length=30, description="The author's handle, without `@`.")
    text: str = Field(max_length=5000, description="The post's text; empty for a post of files alone.")
    lang: str | None = Field(default=None, max_length=35, description="The text's language (BCP 47).")
    tags: list[Annotated[str, Field(max_length=40)]] = Field(
        max_length=100, description="Its tags, without `#`."
    )
    links: list[PostLink] = Field(max_length=5)
    media_ids: list[uuid.UUID] = Field(
        max_length=4,
        description="Its files, in order (`GET /api/v1/media/{id}` for a reader who sees the post).",
    )


class PostData(EventData):
    """``post.created``, ``post.updated``, ``post.restored``."""

    id: uuid.UUID
    author_id: uuid.UUID = Field(description="The author's persona.")
    context: EventContext
    audience: Literal["organisation", "followers", "group"]
    group_id: uuid.UUID | None = Field(description="The group it was posted to, for audience `group`.")
    created_at: datetime
    updated_at: datetime | None = Field(default=None, description="When it was edited: `post.updated` only.")
    content: PostContent | None = Field(
        default=None,
        description="What it says, when every persona of its context may read it; null otherwise "
        "(to followers, in a closed or secret group, by a limited author, held, or personal).",
    )

    def for_subscribers(self) -> Self:
        return self.model_copy(update={"content": None}) if self.context == "personal" else self


class PostDeletedData(EventData):
    """``post.deleted``: by its author, a moderator, its author's erasure or its group's deletion."""

    id: uuid.UUID
    author_id: uuid.UUID
    context: EventContext
    group_id: uuid.UUID | None
    deleted_at: datetime


class CommentContent(BaseModel):
    """What a comment says, for a subscriber who may read its post. At most 2,000 characters."""

    author_handle: str = Field(max_length=30, description="The author's handle, without `@`.")
    text: str = Field(max_length=2000, description="The comment's text; empty for a comment of a file alone.")
    lang: str | None = Field(default=None, max_length=35, description="The text's language (BCP 47).")
    media_ids: list[uuid.UUID] = Field(max_length=1)


class CommentData(EventData):
    """``comment.created``, ``comment.restored``."""

    id: uuid.UUID
    post_id: uuid.UUID
    parent_id: uuid.UUID | None = Field(description="The comment it replies to.")
    author_id: uuid.UUID = Field(description="The author's persona.")
    context: EventContext
    group_id: uuid.UUID | None = Field(description="Its post's group.")
    created_at: datetime
    content: CommentContent | None = Field(
        default=None,
        description="What it says, when every persona of its context may read its post; null otherwise.",
    )

    def for_subscribers(self) -> Self:
        return self.model_copy(update={"content": None}) if self.context == "personal" else self


class CommentDeletedData(EventData):
    """``comment.deleted``."""

    id: uuid.UUID
    post_id: uuid.UUID
    context: EventContext
    group_id: uuid.UUID | None
    deleted_at: datetime


ReactionKind = Literal["like", "celebrate", "support", "insightful", "curious"]


class ReactionData(EventData):
    """``reaction.removed``: the subject is the post."""

    post_id: uuid.UUID
    persona_id: uuid.UUID = Field(description="Who reacted.")
    kind: ReactionKind
    context: EventContext
    group_id: uuid.UUID | None = Field(description="The post's group.")


class ReactionAddedData(ReactionData):
    """``reaction.added``: the subject is the post."""

    created_at: datetime


# Groups and memberships (groups)


class GroupData(EventData):
    """``group.created``, ``group.updated``, ``group.archived``, ``group.restored``."""

    id: uuid.UUID
    context: EventContext
    handle: str | None = Field(
        max_length=30, description="Null for a secret or personal group, which only its members may see."
    )
    name: str | None = Field(max_length=100, description="Null as `handle` is.")
    visibility: Literal["open", "closed", "secret"]
    archived: bool
    moderation: Literal["hidden", "removed"] | None = Field(
        description="What moderation keeps the group under, if anything."
    )
    updated_at: datetime

    def for_subscribers(self) -> Self:
        if self.context == "personal" or self.visibility == "secret":
            return self.model_copy(update={"handle": None, "name": None})
        return self


class GroupDeletedData(EventData):
    """``group.deleted``: deleted for good, its posts with it."""

    id: uuid.UUID
    context: EventContext
    updated_at: datetime = Field(description="When it was deleted.")


class MembershipData(EventData):
    """``membership.added``, ``membership.updated``, ``membership.removed``: the subject is the
    group."""

    group_id: uuid.UUID
    persona_id: uuid.UUID
    context: EventContext
    role: Literal["owner", "moderator", "member"]
    joined_at: datetime
    updated_at: datetime


# Personas (identity)


class PersonaData(EventData):
    """``persona.created``, ``persona.updated``, ``persona.deactivated``."""

    id: uuid.UUID
    context: EventContext
    handle: str | None = Field(
        default=None,
        max_length=30,
        description="Null for a personal persona, or one its owner keeps out of the directory.",
    )
    display_name: str | None = Field(default=None, max_length=100, description="Null as `handle` is.")
    status: Literal["active", "suspended", "deactivated"]
    discoverable: bool = Field(description="Whether the directory lists it.")
    updated_at: datetime | None = Field(description="The profile's own last edit, null until one.")

    def for_subscribers(self) -> Self:
        if self.context == "personal" or not self.discoverable:
            return self.model_copy(update={"handle": None, "display_name": None})
        return self


class PersonaErasedData(EventData):
    """``persona.erased``: a personal persona erased by its owner, with everything it wrote."""

    id: uuid.UUID
    context: EventContext


# Moderation (moderation): reports and the actions taken on them, never who reported or decided


ModerationTarget = Literal["post", "comment", "persona", "group"]


class ModerationData(EventData):
    """``moderation.post.*``, ``moderation.group.*``, ``moderation.persona.*``: an action, or its
    end; the subject is its target."""

    context: EventContext
    report_id: uuid.UUID
    action_id: uuid.UUID
    target_type: ModerationTarget
    target_id: uuid.UUID
    subject_id: uuid.UUID | None = Field(description="The persona concerned: the author, or the persona.")
    until: datetime | None = Field(description="When a limit or a suspension ends by itself.")


class ContentModerationData(ModerationData):
    """``moderation.content.*``: a post or comment hidden, removed, released or restored."""

    post_id: uuid.UUID | None = Field(description="A comment's post.")


class ReportData(EventData):
    """``moderation.report.created``, ``moderation.report.resolved``: no reporter, no moderator, no text."""

    context: EventContext
    report_id: uuid.UUID
    action_id: uuid.UUID | None = Field(description="The action that resolved it.")
    target_type: ModerationTarget
    target_id: uuid.UUID
    subject_id: uuid.UUID | None = Field(description="The persona concerned.")
    until: datetime | None
    kind: Literal["report", "system", "appeal"]
    category: str = Field(max_length=20)
    action: str | None = Field(max_length=20, description="The kind of action that resolved it.")


# Webhooks (identity)


class WebhookTestData(EventData):
    """``webhook.test``: sent to one endpoint on its owner's request."""

    webhook_id: uuid.UUID
    message: str = Field(max_length=200)


@dataclass(frozen=True)
class EventType:
    """One public event type: who publishes it, its data, and one line for people."""

    kind: str
    source: str
    data: type[EventData]
    summary: str

    @property
    def name(self) -> str:
        """The name of its envelope's schema: ``post.created`` is ``PostCreatedEvent``."""
        return "".join(part.capitalize() for part in self.kind.replace("_", ".").split(".")) + "Event"


def _types(source: str, data: type[EventData], summaries: dict[str, str]) -> list[EventType]:
    return [EventType(kind, source, data, summary) for kind, summary in summaries.items()]


CATALOGUE: dict[str, EventType] = {
    event.kind: event
    for event in [
        *_types(
            "feed",
            PostData,
            {
                "post.created": "A post was published (or released by moderation after review)",
                "post.updated": "A post was edited",
                "post.restored": "A post hidden or removed by moderation was restored",
            },
        ),
        *_types("feed", PostDeletedData, {"post.deleted": "A post was deleted"}),
        *_types(
            "feed",
            CommentData,
            {
                "comment.created": "A comment was published (or released by moderation after review)",
                "comment.restored": "A comment hidden or removed by moderation was restored",
            },
        ),
        *_types("feed", CommentDeletedData, {"comment.deleted": "A comment was deleted"}),
        *_types("feed", ReactionAddedData, {"reaction.added": "A persona reacted to a post"}),
        *_types("feed", ReactionData, {"reaction.removed": "A persona took back a reaction"}),
        *_types(
            "groups",
            GroupData,
            {
                "group.created": "A group was created",
                "group.updated": "A group was changed (its name, visibility, image or moderation)",
                "group.archived": "A group was archived: read-only",
                "group.restored": "An archived group was restored",
            },
        ),
        *_types("groups", GroupDeletedData, {"group.deleted": "A group was deleted for good"}),
        *_types(
            "groups",
            MembershipData,
            {
                "membership.added": "A persona joined a group",
                "membership.updated": "A member's role changed",
                "membership.removed": "A persona left a group, or was removed from it",
            },
        ),
        *_types(
            "identity",
            PersonaData,
            {
                "persona.created": "A persona was created",
                "persona.updated": "A persona's profile or status changed",
                "persona.deactivated": "A persona was deactivated",
            },
        ),
        *_types("identity", PersonaErasedData, {"persona.erased": "A personal persona was erased"}),
        *_types(
            "moderation",
            ReportData,
            {
                "moderation.report.created": "A report was filed",
                "moderation.report.resolved": "A report was resolved",
            },
        ),
        *_types(
            "moderation",
            ContentModerationData,
            {
                "moderation.content.hidden": "A post or comment was hidden",
                "moderation.content.removed": "A post or comment was removed",
                "moderation.content.released": "A post or comment held for review was released",
                "moderation.content.restored": "A hidden or removed post or comment was restored",
            },
        ),
        *_types(
            "moderation",
            ModerationData,
            {
                "moderation.post.locked": "A post was locked: no more comments or reactions",
                "moderation.post.unlocked": "A post was unlocked",
                "moderation.group.hidden": "A group was hidden",
                "moderation.group.removed": "A group was removed",
                "moderation.group.restored": "A hidden or removed group was restored",
                "moderation.persona.warned": "A persona was warned",
                "moderation.persona.limited": "A persona was limited: its posts reach its followers only",
                "moderation.persona.unlimited": "A persona's limit was lifted",
                "moderation.persona.suspended": "A persona was suspended",
                "moderation.persona.reinstated": "A suspended persona was reinstated",
            },
        ),
        *_types("identity", WebhookTestData, {"webhook.test": "A test event, sent on request"}),
    ]
}


class NotCatalogued(ValueError):
    """An event type no webhook receives: internal, or missing from the catalogue."""


def webhook_data(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The data of an event as webhook subscribers receive it; ``NotCatalogued`` for a type
    that is not public, pydantic's ``ValidationError`` for data that does not fit its model."""
    entry = CATALOGUE.get(event_type)
    if entry is None:
        raise NotCatalogued(event_type)
    return entry.data.model_validate(data).for_subscribers().model_dump(mode="json")


class CloudEvent(BaseModel):
    """The envelope of every webhook: a CloudEvents 1.0 event in structured JSON mode, sent as
    `application/cloudevents+json`."""

    specversion: Literal["1.0"]
    id: uuid.UUID = Field(description="The event's id: the same in every delivery and redelivery of it.")
    source: str = Field(description="The publishing service, as `/govsocial/<service>`.")
    type: str
    subject: str = Field(
        max_length=100,
        description="What the event is about (a post's id for `post.*`, `comment.*` and `reaction.*`; "
        "a group's for `group.*` and `membership.*`; a persona's for `persona.*`): events with one "
        "subject arrive in their order.",
    )
    time: datetime = Field(description="When the change happened.")
    datacontenttype: Literal["application/json"]
    data: dict[str, Any]


_LITERAL: Any = Literal  # a Literal of a value known at run time


def _envelope(event: EventType) -> type[CloudEvent]:
    source = f"/govsocial/{event.source}"
    model: type[CloudEvent] = create_model(
        event.name,
        __base__=CloudEvent,
        __doc__=f"`{event.kind}`: {event.summary}.",
        type=(_LITERAL[event.kind], Field(description="The event type.")),
        source=(_LITERAL[source], Field(description="The publishing service.")),
        data=(event.data, ...),
    )
    return model


ENVELOPES: dict[str, type[CloudEvent]] = {kind: _envelope(event) for kind, event in CATALOGUE.items()}
"""The whole webhook body of each type, as a model: ``ENVELOPES["post.created"]`` validates
one."""

SIGNATURE_HEADERS: list[dict[str, Any]] = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The message's id, `msg_<event id>`: the same on every retry and redelivery, "
        "so a receiver can skip one it has processed.",
        "schema": {"type": "string", "pattern": "^msg_[0-9a-f-]{36}$"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "When this attempt was signed, in seconds since the epoch. Refuse one more than "
        "five minutes from your clock: a replay.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": "`v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>` with the "
        "endpoint's secret (the base64 after `whsec_`), per Standard Webhooks; several signatures are "
        "separated by spaces. Verify it on the raw body before parsing it.",
        "schema": {"type": "string"},
    },
]


def _operation(event: EventType) -> dict[str, Any]:
    return {
        "operationId": "receive_" + event.kind.replace(".", "_"),
        "summary": event.summary,
        "description": f"Sent by identity to each endpoint subscribed to `{event.kind}` (docs/events.md). "
        f"{event.data.__doc__ or ''}".strip(),
        "tags": ["webhooks"],
        "security": [],
        "parameters": SIGNATURE_HEADERS,
        "requestBody": {
            "required": True,
            "content": {CONTENT_TYPE: {"schema": {"$ref": REF.format(model=event.name)}}},
        },
        "responses": {
            "2XX": {"description": "Received: any 2xx acknowledges the delivery. Answer within 5 seconds."},
            "default": {
                "description": "Not received: any other answer, or none in time, is sent again later, "
                "with exponential back-off, until the delivery is marked failed (docs/events.md)."
            },
        },
    }


def openapi_webhooks() -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI 3.1 ``webhooks`` object ({event type: a path item whose ``post`` operation
    is the delivery}) and the component schemas it refers to, to merge into
    ``components.schemas``: each type's envelope (``PostCreatedEvent``) and the data it holds
    (``PostData``, ``PostContent`` …)."""
    _, definitions = models_json_schema(
        [(model, "serialization") for model in ENVELOPES.values()], ref_template=REF
    )
    webhooks = {kind: {"post": _operation(event)} for kind, event in sorted(CATALOGUE.items())}
    return webhooks, definitions.get("$defs", {})


# The stream (feed: GET /api/v1/stream). Its schemas are feed's, in the published document.


@dataclass(frozen=True)
class StreamEventType:
    """One event of the stream: its ``event:`` field, the schema of the whole event and of its
    ``data:`` line (components of the published document), and whether it has an ``id:``."""

    event: str
    schema: str
    data: str
    has_id: bool
    summary: str


STREAM_EVENTS: tuple[StreamEventType, ...] = (
    StreamEventType("post", "PostEvent", "Post", True, "A new post of the reader's home timeline"),
    StreamEventType("notification", "NotificationEvent", "Notification", True, "A new notification"),
    StreamEventType(
        "reconnect", "ReconnectEvent", "StreamReconnect", False, "The stream ends now: open it again"
    ),
)


def stream_events() -> dict[str, Any]:
    """The stream's events as an object {event: a reference to its schema}, for the document
    (the schemas are in it already, as the stream's answer)."""
    return {event.event: {"$ref": REF.format(model=event.schema)} for event in STREAM_EVENTS}
