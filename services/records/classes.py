"""Which retention class an item of the records copy is in (decision 0033, "Classes and
policies"). Every item of the personal context is ``personal_content``; a professional post's
class follows its audience, a group's post being ``group_posts`` whatever its audience."""

from __future__ import annotations

import uuid
from typing import Literal, get_args

ContentClass = Literal[
    "organisation_posts",
    "followers_posts",
    "group_posts",
    "comments",
    "reactions",
    "edit_history",
    "personal_content",
]
OperationalClass = Literal["notifications", "webhook_deliveries", "group_health", "audit_log"]
ClassName = Literal[ContentClass, OperationalClass]

CONTENT_CLASSES: tuple[str, ...] = get_args(ContentClass)
OPERATIONAL_CLASSES: tuple[str, ...] = get_args(OperationalClass)
CLASSES = CONTENT_CLASSES + OPERATIONAL_CLASSES
# The classes of posts: their age may be counted from their last activity instead of their
# creation. ``personal_content`` is one of them for its posts (its comments and reactions are
# aged by their own last change).
POST_CLASSES = ("organisation_posts", "followers_posts", "group_posts", "personal_content")
# The professional posts, whose earlier versions are ``edit_history``.
PROFESSIONAL_POST_CLASSES = ("organisation_posts", "followers_posts", "group_posts")
# The classes a hold naming only groups can reach: a group's posts, the comments and reactions
# on them, their versions, and a personal group's content. (A hold naming custodians reaches
# every class.)
GROUP_REACH = ("group_posts", "comments", "reactions", "edit_history", "personal_content")

# Which owner destroys an operational class's rows (records itself for its audit log too).
OWNERS = {
    "notifications": "feed",
    "webhook_deliveries": "identity",
    "group_health": "groups",
    "audit_log": "identity",
}

_REACTIONS = uuid.UUID("6f1b1f0e-6a43-4c1e-9d0a-3d8e2f4b7c55")


def klass(kind: str, context: str, *, audience: str | None = None, group_id: uuid.UUID | None = None) -> str:
    """The class of a post, comment or reaction."""
    if context == "personal":
        return "personal_content"
    if kind == "comment":
        return "comments"
    if kind == "reaction":
        return "reactions"
    if group_id is not None:
        return "group_posts"
    return "followers_posts" if audience == "followers" else "organisation_posts"


def reaction_id(post_id: uuid.UUID, persona_id: uuid.UUID, kind: str) -> uuid.UUID:
    """The records copy's id of a reaction, which has none of its own at feed."""
    return uuid.uuid5(_REACTIONS, f"{post_id}:{persona_id}:{kind}")


def media_klass(context: str, *, post_klass: str | None = None, group_id: uuid.UUID | None = None) -> str:
    """The class of a media attached to a post or a comment: its post's (decision 0036). Until
    the post is in the copy (media's event and feed's arrive in no set order) it is read from
    the media's own context and group, and a professional post outside a group is taken as
    ``organisation_posts``; the post's event corrects it."""
    if context == "personal":
        return "personal_content"
    if post_klass is not None:
        return post_klass
    return "group_posts" if group_id is not None else "organisation_posts"
