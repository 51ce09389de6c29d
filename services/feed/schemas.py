"""Feed's public contract: the request and response models, and the functions that map each
model to its one public shape (``post_public``, ``revision_public``, ``comment_public``,
``notification_public``, ``follow_public``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic.json_schema import SkipJsonSchema

from domain.contexts import Context
from domain.media import MediaAttachment
from kit.search import PROBLEMS, query_parameter
from kit.text import HttpsUrl, IsoDateTime, MultiLineText, MultiLineTextOrEmpty, SingleLineText
from kit.timeutil import utcnow
from services.feed.models import REACTION_KINDS, Comment, Follow, Notification, Post, PostRevision

Audience = Literal["organisation", "followers", "group"]
Moderation = Literal["hidden", "held"]
ReactionKind = Literal["like", "celebrate", "support", "insightful", "curious"]
Body = Annotated[
    str, Field(min_length=1, max_length=5000, description="Up to 5,000 characters."), MultiLineText
]
CommentBody = Annotated[
    str, Field(min_length=1, max_length=2000, description="Up to 2,000 characters."), MultiLineText
]
Lang = Annotated[
    str,
    Field(
        min_length=1,
        max_length=35,
        description="The language of the text, a BCP 47 tag such as `en`, `fr` or `fr-CA`. Left out "
        "(or null), it is detected from the text when it is clearly English or French. It chooses "
        "how the search stems the text's words.",
        examples=["en", "fr-CA"],
    ),
]
LangPublic = Annotated[
    str | None, Field(description="The text's language (BCP 47), declared or detected; null when unknown.")
]
TagName = Annotated[
    str,
    Field(min_length=1, max_length=40, pattern=r"^[^\W][\w-]*$", description="A tag without its `#`."),
]
MAX_LINKS = 5
MAX_POST_MEDIA = 4  # decision 0036
MAX_COMMENT_MEDIA = 1
PostText = Annotated[
    str,
    Field(
        max_length=5000,
        description="Up to 5,000 characters; empty (or left out) only with `media_ids`, a post of "
        "files alone.",
    ),
    MultiLineTextOrEmpty,
]
CommentText = Annotated[
    str,
    Field(
        max_length=2000,
        description="Up to 2,000 characters; empty (or left out) only with `media_ids`, a comment "
        "of a file alone.",
    ),
    MultiLineTextOrEmpty,
]


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpsUrl
    title: Annotated[str, Field(min_length=1, max_length=200), SingleLineText] | None = None


class LinkPublic(BaseModel):
    url: str
    title: str | None = None


def links_public(links: list[dict[str, Any]] | None) -> list[LinkPublic]:
    """A post's (or a revision's) stored links."""
    return [LinkPublic(url=link["url"], title=link.get("title")) for link in links or []]


# What feed keeps of each file on a post or comment is exactly this shape (``Post.media``,
# ``stored_media``). Identity and groups publish the same schema, word for word, so that the
# gateway's merged document holds it once.


def media_public(media: list[dict[str, Any]] | None) -> list[MediaAttachment]:
    """A post's (or a comment's) stored attachments."""
    return [MediaAttachment.model_validate(item) for item in media or []]


def stored_media(media: list[MediaAttachment]) -> list[dict[str, Any]]:
    """Attachments as a row keeps them: each exactly as its public shape dumps, which is what
    PostgreSQL's home page writes out as it is (``home_sql``)."""
    return [item.model_dump(mode="json") for item in media]


def _distinct(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(ids)) != len(ids):
        raise ValueError("each media id at most once")
    return ids


def media_ids_field(most: int) -> Any:
    return Field(
        default_factory=list,
        max_length=most,
        description=f"Up to {most} of the caller's own uploads (`POST /api/v1/media`), ready and not "
        "attached elsewhere, in the order to show them. Each id at most once.",
    )


MediaIds = Annotated[list[uuid.UUID], AfterValidator(_distinct)]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: PostText = ""
    lang: Lang | None = None
    audience: Audience = "organisation"
    group_id: uuid.UUID | None = Field(default=None, description="Required when audience is `group`.")
    links: list[LinkIn] = Field(default_factory=list, max_length=MAX_LINKS)
    pinned_until: IsoDateTime | None = Field(
        default=None,
        description="Makes the post an announcement that leads every home timeline of the context "
        "until then. Administrators and the `communications` role only; audience `organisation`.",
    )
    media_ids: MediaIds = media_ids_field(MAX_POST_MEDIA)

    @model_validator(mode="after")
    def _group_matches_audience(self) -> PostCreate:
        if not self.body and not self.media_ids:
            raise ValueError("body is required, but for a post of files alone (media_ids)")
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
    lang: Lang | None = Field(
        default=None,
        description="The language of the text (BCP 47). Left out, an edit keeps the post's; null "
        "detects it from the text.",
    )
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


def mentions_public(mentions: list[dict[str, Any]] | None) -> list[MentionPublic]:
    """A post's (or a comment's) stored mentions."""
    return [MentionPublic(id=m["id"], handle=m["handle"]) for m in mentions or []]


class PostPublic(BaseModel):
    id: uuid.UUID
    author: AuthorPublic
    context: Context
    audience: Audience
    group_id: uuid.UUID | None
    body: str
    lang: str | None = Field(
        description="The text's language (BCP 47), declared or detected; null when unknown."
    )
    mentions: list[MentionPublic]
    tags: list[str]
    links: list[LinkPublic]
    media: list[MediaAttachment] = Field(description="The files attached, in their order.")
    pinned: bool = Field(description="An announcement still pinned, or a post its group's owner pinned.")
    pinned_until: datetime | None
    reactions: ReactionsPublic
    comment_count: int
    created_at: datetime
    updated_at: datetime
    edited_at: datetime | None
    locked: bool = Field(description="Locked by a moderator: no new comments.")
    moderation: Moderation | None = Field(
        description="For the author only (nobody else is shown such a post): `hidden` by a "
        "moderator, or `held` for review until a moderator releases it."
    )


def post_public(row: Any, now: datetime | None = None) -> PostPublic:
    """A post as the public shape, from a row of ``timelines.posts_for``: the post, its author's
    handle and display name, and the reader's reactions as a bit set (bit ``i`` for
    ``REACTION_KINDS[i]``). ``pinned`` is as of ``now``. ``moderation`` is the row's: the reads
    bring a hidden or held post to its author alone (``timelines.shown``).

    PostgreSQL's home page writes the same shape as JSON itself (``home_sql``); its document is
    built from this model's fields, and the feed's tests compare the two."""
    post: Post
    post, handle, display_name, mine = row
    now = now or utcnow()
    mine = int(mine or 0)
    return PostPublic(
        id=post.id,
        author=AuthorPublic(id=post.author_id, handle=handle, display_name=display_name),
        context=post.context,
        audience=post.audience,
        group_id=post.group_id,
        body=post.body,
        lang=post.lang,
        mentions=mentions_public(post.mentions),
        tags=list(post.tags or []),
        links=links_public(post.links),
        media=media_public(post.media),
        pinned=bool(post.pinned_until and post.pinned_until > now) or post.group_pinned_at is not None,
        pinned_until=post.pinned_until,
        reactions=ReactionsPublic(
            counts={kind: getattr(post, f"{kind}_count") for kind in REACTION_KINDS},
            mine=[kind for i, kind in enumerate(REACTION_KINDS) if mine & (1 << i)],
        ),
        comment_count=post.comment_count,
        created_at=post.created_at,
        updated_at=post.updated_at,
        edited_at=post.edited_at,
        locked=post.locked_at is not None,
        moderation=_moderation(post.moderation),
    )


QUERY_SYNTAX = (
    "Words to find (every one must match, in any form: `plan` finds *planning*, `réunion` finds "
    '*reunions*, accents or not), `"an exact phrase"`, `OR` between two of them, `-word` or '
    '`-"a phrase"` to leave out, and the filters `author:handle`, `group:handle`, `tag:name` (or '
    "`#name`), `since:2026-01-31` and `until:2026-02-28`. Stop words (English and French) are "
    "left out; a query with nothing left to find answers an empty page."
)
SearchText = Annotated[str, query_parameter(QUERY_SYNTAX)]
SEARCH_PROBLEMS = PROBLEMS


Highlight = Annotated[
    str,
    Field(
        description="An excerpt of the text around the first match, HTML-escaped, each matching "
        "word between `<mark>` and `</mark>`, and `…` where the text was cut."
    ),
]


class PostSearchItem(PostPublic):
    """A post as a search finds it: the post as every timeline shows it, and its excerpt."""

    highlight: Highlight


def _moderation(state: str | None) -> Moderation | None:
    """What the author is told of an item's moderation (a removed item is shown to nobody)."""
    if state == "hidden":
        return "hidden"
    if state == "held":
        return "held"
    return None


class RevisionPublic(BaseModel):
    id: uuid.UUID
    body: str
    links: list[LinkPublic]
    replaced_at: datetime = Field(description="When an edit replaced this text.")


def revision_public(revision: PostRevision) -> RevisionPublic:
    """A text an edit replaced, from its ``PostRevision``."""
    return RevisionPublic(
        id=revision.id,
        body=revision.body,
        links=links_public(revision.links),
        replaced_at=revision.created_at,
    )


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: CommentText = ""
    lang: Lang | None = None
    parent_id: uuid.UUID | None = Field(
        default=None, description="A top-level comment of the same post: replies go one level deep."
    )
    media_ids: MediaIds = media_ids_field(MAX_COMMENT_MEDIA)

    @model_validator(mode="after")
    def _text_or_media(self) -> CommentCreate:
        if not self.body and not self.media_ids:
            raise ValueError("body is required, but for a comment of a file alone (media_ids)")
        return self


class CommentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: CommentBody
    lang: Lang | None = Field(
        default=None,
        description="The language of the text (BCP 47). Left out, an edit keeps the comment's; null "
        "detects it from the new text.",
    )


class CommentPublic(BaseModel):
    id: uuid.UUID
    post_id: uuid.UUID
    parent_id: uuid.UUID | None
    author: AuthorPublic
    body: str
    lang: str | None = Field(
        description="The text's language (BCP 47), declared or detected; null when unknown."
    )
    mentions: list[MentionPublic]
    media: list[MediaAttachment] = Field(description="The file attached, if any.")
    reply_count: int
    created_at: datetime
    updated_at: datetime
    edited_at: datetime | None
    moderation: Moderation | None = Field(
        description="For the author only (nobody else is shown such a comment): `hidden` by a "
        "moderator, or `held` for review until a moderator releases it."
    )


def comment_public(comment: Comment, handle: str | None, display_name: str | None) -> CommentPublic:
    """A comment as the public shape, with its author's handle and display name (a row of
    ``commenting.comments_of``, which brings a hidden or held comment to its author alone)."""
    return CommentPublic(
        id=comment.id,
        post_id=comment.post_id,
        parent_id=comment.parent_id,
        author=AuthorPublic(id=comment.author_id, handle=handle, display_name=display_name),
        body=comment.body,
        lang=comment.lang,
        mentions=mentions_public(comment.mentions),
        media=media_public(comment.media),
        reply_count=comment.reply_count,
        created_at=comment.created_at,
        updated_at=comment.updated_at,
        edited_at=comment.edited_at,
        moderation=_moderation(comment.moderation),
    )


class CommentSearchItem(CommentPublic):
    """A comment as a search finds it: the comment as its post's comments show it, and its
    excerpt."""

    highlight: Highlight


class NotificationPublic(BaseModel):
    id: uuid.UUID
    kind: Literal["mention", "comment", "reply"]
    actor: AuthorPublic
    post_id: uuid.UUID
    comment_id: uuid.UUID | None
    created_at: datetime
    read: bool


def notification_public(
    note: Notification, handle: str | None, display_name: str | None
) -> NotificationPublic:
    """A notification as the public shape, with its actor's handle and display name (a row of
    ``notifications.notifications_of``)."""
    return NotificationPublic(
        id=note.id,
        kind=note.kind,
        actor=AuthorPublic(id=note.actor_id, handle=handle, display_name=display_name),
        post_id=note.post_id,
        comment_id=note.comment_id,
        created_at=note.created_at,
        read=note.read_at is not None,
    )


class StreamTicket(BaseModel):
    """A one-time ticket that opens the event stream without an Authorization header, as a
    browser's ``EventSource`` must: ``GET /api/v1/stream?ticket=…``."""

    ticket: str = Field(
        description="Use it once, within `expires_in` seconds, as the stream's `ticket` query parameter. "
        "Keep it out of anything that is stored or shared: it opens the stream as the token's persona."
    )
    expires_in: int = Field(
        description="Seconds it stays usable: 30, or less when the token it was asked with expires sooner."
    )


ReconnectReason = Literal["token-expired", "timeout"]
STREAM_EVENT_ID = (
    "Where the stream stands after this event (`<last post id>.<last notification id>`, hex); "
    "the stream resumes after it given as `Last-Event-ID` or `last_event_id`."
)


class StreamReconnect(BaseModel):
    """The data of the stream's last event, ``reconnect``: why the stream ends now."""

    reason: ReconnectReason = Field(
        description="`token-expired`: the token behind the stream expired; get a fresh one (refresh "
        "it) and, from a browser, a new ticket. `timeout`: the stream reached its longest duration."
    )


class PostEvent(BaseModel):
    """A `post` event: a new post of the reader's home timeline, or an announcement."""

    event: Literal["post"]
    id: str = Field(description=STREAM_EVENT_ID)
    data: PostPublic


class NotificationEvent(BaseModel):
    """A `notification` event: a new notification of the reader."""

    event: Literal["notification"]
    id: str = Field(description=STREAM_EVENT_ID)
    data: NotificationPublic


class ReconnectEvent(BaseModel):
    """The `reconnect` event, last before the stream ends: open it again to go on. It has no
    id, so the resume position stays the last `post` or `notification` event's."""

    event: Literal["reconnect"]
    data: StreamReconnect


StreamEvent = Annotated[PostEvent | NotificationEvent | ReconnectEvent, Field(discriminator="event")]
"""One event of the stream (``docs/stream.md``): its ``event:`` field, its ``id:`` field when it
has one, and its ``data:`` line, JSON of the named schema."""


class NotificationsRead(BaseModel):
    """Send exactly one of ``ids`` and ``all``: both, or neither, is a 422. ``all: false`` marks
    nothing."""

    # The one-of rule is said in words: as a ``oneOf`` of ``required`` lists, generated clients
    # read the body as one of any shape.
    model_config = ConfigDict(extra="forbid")

    ids: Annotated[list[uuid.UUID], Field(max_length=100)] | SkipJsonSchema[None] = Field(
        default=None, description="The notifications to mark read; not with `all`."
    )
    all: StrictBool = Field(default=False, description="Mark every notification read; not with `ids`.")

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


def follow_public(
    follow: Follow, handle: str | None, display_name: str | None, *, follower: bool
) -> FollowPublic:
    """The other side of ``follow`` as the public shape: its follower when ``follower``, else
    the persona followed; ``handle`` and ``display_name`` are that persona's."""
    return FollowPublic(
        persona_id=follow.follower_id if follower else follow.followee_id,
        handle=handle,
        display_name=display_name,
        since=follow.created_at,
    )


class ModerationItem(BaseModel):
    """A post or a comment as moderation captures it when a report is filed (decision 0032;
    ``routes.internal``, never published): its text and links, and where it sits."""

    item_type: Literal["post", "comment"]
    item_id: uuid.UUID
    post_id: uuid.UUID
    author_id: uuid.UUID
    context: Context
    group_id: uuid.UUID | None
    body: str
    links: list[str]
    created_at: datetime


def moderation_post(post: Post) -> ModerationItem:
    return ModerationItem(
        item_type="post",
        item_id=post.id,
        post_id=post.id,
        author_id=post.author_id,
        context=post.context,
        group_id=post.group_id,
        body=post.body,
        links=[link["url"] for link in post.links or []],
        created_at=post.created_at,
    )


def moderation_comment(comment: Comment, post: Post) -> ModerationItem:
    return ModerationItem(
        item_type="comment",
        item_id=comment.id,
        post_id=post.id,
        author_id=comment.author_id,
        context=post.context,
        group_id=post.group_id,
        body=comment.body,
        links=[],
        created_at=comment.created_at,
    )


class RecordsNotification(BaseModel):
    """A notification as records exports it to the persona it is for (decision 0033;
    ``routes.internal``, never published): the row's own fields."""

    id: uuid.UUID
    persona_id: uuid.UUID
    kind: str
    post_id: uuid.UUID
    comment_id: uuid.UUID | None
    actor_id: uuid.UUID
    created_at: datetime
    read_at: datetime | None


class RecordsNotifications(BaseModel):
    """A page of a persona's notifications in id order; ``next`` is the ``after`` of the next
    page, null after the last."""

    items: list[RecordsNotification]
    next: uuid.UUID | None


def records_notification(note: Notification) -> RecordsNotification:
    return RecordsNotification(
        id=note.id,
        persona_id=note.persona_id,
        kind=note.kind,
        post_id=note.post_id,
        comment_id=note.comment_id,
        actor_id=note.actor_id,
        created_at=note.created_at,
        read_at=note.read_at,
    )
