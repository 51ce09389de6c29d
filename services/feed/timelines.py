"""Who sees which post, as SQLAlchemy conditions, and the timeline queries built on them.

A post is visible to a persona of the same context when it is shown at all (``shown``: not
deleted, its author not deactivated or erased), and: its audience is the organisation; or it is
for the author's followers and the reader is the author or follows them; or it is in a group the
reader is a member of, or in an open group of the reader's context (decision 0004). Posts of
closed and secret groups are for members only.

This module is the rule's one statement for every read but PostgreSQL's home page:

- posts: ``visible_posts`` (``posts_for`` with ``visible_to``) for single posts, search and
  every timeline but the home timeline; ``home_rule``/``home_condition`` and
  ``announcements_condition`` (on ``posts_for``) for the home timeline on SQLite and the event
  stream;
- what hangs off a post: ``visible_ids`` for its comments (``commenting.comments_of``) and
  ``shown_ids`` for notifications about it (``notifications.notifications_of``);
- who is told of a post: ``seen_by_each`` (``notifications.who_can_see``).

PostgreSQL's home page and inboxes have their own statement of it, in SQL
(``services.feed.home_sql``); ``tests/feed/test_home_rules.py`` compares the two on generated
worlds. What moderation hides (decision 0032) is a condition of ``shown``, which takes the
reader (a hidden or held post is its author's alone), here, and of ``home_sql._shown`` there;
``tests/feed/test_hiding.py`` checks that it reaches every read. A limited author's posts to
the organisation reach only their followers (``unlimited_author``, in ``seen_by`` and the
announcements).

Every list is newest first with a one-column keyset (post ids are UUIDv7, so id order is
creation order); a page costs one statement, the pinned posts of a first page included
(decision 0006).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Uuid,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from domain.principal import Principal
from services.feed.models import (
    REACTION_KINDS,
    Follow,
    GroupReplica,
    MembershipReplica,
    PersonaReplica,
    Post,
    Reaction,
)

MAX_PINNED = 10
MAX_INLINE_SOURCES = 1000
ACTIVE_AUTHOR = or_(col(PersonaReplica.status).is_(None), col(PersonaReplica.status) == "active")
# Audiences whose posts reach a home timeline by their author, and by their group.
BY_AUTHOR = ("organisation", "followers")
BY_GROUP = "group"


def me(reader: Principal) -> uuid.UUID:
    assert reader.persona_id is not None
    return reader.persona_id


# Most functions below take the reader's persona and context as values or as bound parameters
# (``bindparam``): a statement built once with parameters serves every reader (the home
# timeline on SQLite: see ``services.feed.home``).


def reactions_of(persona: Any) -> Any:
    """``persona``'s reactions to the outer query's post as a bit set, so that a page of posts
    with the reader's own reactions stays one statement."""
    bits = case(*[(col(Reaction.kind) == kind, 1 << i) for i, kind in enumerate(REACTION_KINDS)], else_=0)
    return (
        select(func.coalesce(func.sum(bits), 0))
        .where(col(Reaction.post_id) == col(Post.id), col(Reaction.persona_id) == persona)
        .scalar_subquery()
    )


def my_reactions(reader: Principal) -> Any:
    return reactions_of(me(reader))


AUTHOR_ONLY = ("hidden", "held")  # moderation states whose posts and comments the author still sees


def _moderation_allows(viewer: Any) -> Any:
    """Posts moderation left alone; and, for ``viewer``, their own hidden and held posts."""
    if viewer is None:
        return col(Post.moderation).is_(None)
    return or_(
        col(Post.moderation).is_(None),
        and_(col(Post.moderation).in_(AUTHOR_ONLY), col(Post.author_id) == viewer),
    )


def _group_not_moderated() -> Any:
    """Posts outside groups, or in a group moderation left alone."""
    moderated = select(GroupReplica.id).where(col(GroupReplica.moderation).is_not(None)).correlate(None)
    return or_(col(Post.group_id).is_(None), col(Post.group_id).not_in(moderated))


def shown(viewer: Any = None) -> Any:
    """What every read leaves out: deleted posts, posts of authors no longer active, posts
    moderation hid, held or removed (but for their author, ``viewer``, who still sees those
    hidden and held) and posts of groups moderation hid or removed. A condition on ``Post``
    joined to its author's ``PersonaReplica`` (as in ``posts_for``); ``viewer`` is a value or a
    bound parameter. Every read of posts, and of what hangs off them, is built on it: a
    condition added here hides a post everywhere but PostgreSQL's home page (``home_sql``)."""
    return and_(
        col(Post.deleted_at).is_(None), ACTIVE_AUTHOR, _moderation_allows(viewer), _group_not_moderated()
    )


def unlimited_author() -> Any:
    """Posts whose author moderation has not limited (decision 0032): a limited author's posts
    to the organisation reach only their followers (``seen_by``), and lead no home timeline."""
    limited = select(PersonaReplica.id).where(col(PersonaReplica.limited)).correlate(None)
    return col(Post.author_id).not_in(limited)


def _shown_with_authors(query: Any, viewer: Any) -> Any:
    """``query`` (of ``Post``) joined to each post's author in the replica, keeping posts
    ``shown`` to ``viewer``."""
    return query.join(PersonaReplica, col(PersonaReplica.id) == col(Post.author_id), isouter=True).where(
        shown(viewer)
    )


def posts_seen_by(persona: Any) -> Any:
    """Posts shown to ``persona``, each with its author's names and ``persona``'s reactions (a
    row for ``schemas.post_public``)."""
    return _shown_with_authors(
        select(Post, PersonaReplica.handle, PersonaReplica.display_name, reactions_of(persona).label("mine")),
        persona,
    )


def posts_for(reader: Principal) -> Any:
    return posts_seen_by(me(reader))


def shown_ids(viewer: Any) -> Any:
    """The ids of the posts ``shown`` to ``viewer``, as a subquery complete in itself: it joins
    the authors' replica on its own and borrows no table of the query it sits in (which may
    join the replica for a persona of its own: a comment's author, a notification's actor)."""
    return _shown_with_authors(select(Post.id), viewer).correlate(None)


def _follows(reader: Any) -> Any:
    return col(Post.author_id).in_(select(Follow.followee_id).where(col(Follow.follower_id) == reader))


def _my_groups(reader: Any) -> Any:
    return col(Post.group_id).in_(
        select(MembershipReplica.group_id).where(col(MembershipReplica.persona_id) == reader)
    )


def _open_groups(context: Any) -> Any:
    return col(Post.group_id).in_(
        select(GroupReplica.id).where(
            col(GroupReplica.visibility) == "open", col(GroupReplica.context) == context
        )
    )


def seen_by(persona: Any, context: Any) -> Any:
    """The visibility rule as a SQL condition on ``Post``, for ``persona`` of ``context``
    (values or bound parameters): which posts the persona may see, ``shown`` aside. A post to
    the organisation by a limited author is for its author and their followers only."""
    return and_(
        col(Post.context) == context,
        or_(
            and_(
                col(Post.audience) == "organisation",
                or_(unlimited_author(), col(Post.author_id) == persona, _follows(persona)),
            ),
            and_(
                col(Post.audience) == "followers",
                or_(col(Post.author_id) == persona, _follows(persona)),
            ),
            and_(col(Post.audience) == "group", or_(_my_groups(persona), _open_groups(context))),
        ),
    )


def visible_to(reader: Principal) -> Any:
    """The visibility rule as a SQL condition on ``Post``, for ``reader``."""
    assert reader.context is not None
    return seen_by(me(reader), reader.context)


def visible_posts(reader: Principal) -> Any:
    """The posts ``reader`` sees, as rows for ``schemas.post_public``: what single posts,
    search and every timeline but the home timeline read."""
    assert reader.context is not None
    return rows_seen_by(me(reader), reader.context)


def rows_seen_by(persona: Any, context: Any) -> Any:
    """``visible_posts`` for ``persona`` of ``context`` (values or bound parameters)."""
    return posts_seen_by(persona).where(seen_by(persona, context))


def visible_ids(reader: Principal) -> Any:
    """The ids of the posts ``reader`` sees, as a subquery complete in itself (``shown_ids``)."""
    return shown_ids(me(reader)).where(visible_to(reader))


@functools.lru_cache(maxsize=64)
def seen_by_each(count: int) -> Any:
    """One row for the post ``post`` (none when there is no such post), with a column for each
    of ``count`` personas ``persona0``, ``persona1``… (of ``context``, the post's), in their
    order: whether the rule lets that persona see the post (``seen_by``). Whether the post is
    shown at all is left to the reads. Built once for each count, with bound parameters
    (``seen_by_each_params``)."""
    context: Any = bindparam("context")
    return (
        select(
            *(seen_by(bindparam(f"persona{i}", type_=Uuid()), context).label(f"p{i}") for i in range(count))
        )
        .select_from(Post)
        .where(col(Post.id) == bindparam("post", type_=Uuid()))
    )


def seen_by_each_params(post_id: uuid.UUID, context: str, personas: Sequence[uuid.UUID]) -> dict[str, Any]:
    return {"post": post_id, "context": context, **{f"persona{i}": p for i, p in enumerate(personas)}}


def not_pinned(now: Any) -> Any:
    return or_(col(Post.pinned_until).is_(None), col(Post.pinned_until) <= now)


@dataclass(frozen=True, slots=True)
class Sources:
    """Whom and which groups a reader's home timeline draws from: ``authors`` are the reader
    and their followees. Lists of ids, or bound parameters that expand to them."""

    authors: Any
    groups: Any


BOUND_SOURCES = Sources(
    authors=bindparam("authors", expanding=True), groups=bindparam("groups", expanding=True)
)
_READER: BindParameter[Any] = bindparam("reader")
_SOURCES: Any = union_all(
    select(literal_column("'f'").label("kind"), col(Follow.followee_id).label("source")).where(
        col(Follow.follower_id) == _READER
    ),
    select(literal_column("'g'").label("kind"), col(MembershipReplica.group_id).label("source")).where(
        col(MembershipReplica.persona_id) == _READER
    ),
).limit(bindparam("cap"))


async def home_sources(session: AsyncSession, reader: Principal) -> Sources | None:
    """The reader's followees and groups, or None when there are more than
    ``MAX_INLINE_SOURCES`` (``home_rule`` then uses subqueries instead of lists)."""
    persona = me(reader)
    rows = (await session.execute(_SOURCES, {"reader": persona, "cap": MAX_INLINE_SOURCES + 1})).all()
    if len(rows) > MAX_INLINE_SOURCES:
        return None
    return Sources(
        authors=[persona, *(_uuid(row.source) for row in rows if row.kind == "f")],
        groups=[_uuid(row.source) for row in rows if row.kind == "g"],
    )


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def home_rule(persona: Any, context: Any, now: Any, sources: Sources | None) -> Any:
    """Own posts, posts by followed personas (organisation or followers), and posts in the
    reader's groups, in the reader's context. Announcements still pinned lead the first page
    instead (``announcements_rule``).

    With ``sources`` the followees and groups are lists, which lets a planner see how few
    there are (decision 0006). Without, they are subqueries."""
    if sources is None:
        authors = or_(col(Post.author_id) == persona, _follows(persona))
        groups = _my_groups(persona)
    else:
        authors = col(Post.author_id).in_(sources.authors)
        groups = col(Post.group_id).in_(sources.groups)
    return and_(
        col(Post.context) == context,
        or_(
            and_(col(Post.audience).in_(BY_AUTHOR), authors),
            and_(col(Post.audience) == BY_GROUP, groups),
        ),
        not_pinned(now),
    )


def home_condition(reader: Principal, now: datetime, sources: Sources | None = None) -> Any:
    """``home_rule`` for ``reader``."""
    return home_rule(me(reader), reader.context, now, sources)


def announcements_rule(context: Any, now: Any) -> Any:
    """Announcements still pinned in ``context``, but a limited author's: they lead the home
    timeline."""
    return and_(
        col(Post.context) == context,
        col(Post.audience) == "organisation",
        col(Post.pinned_until) > now,
        unlimited_author(),
    )


def announcements_condition(reader: Principal, now: datetime) -> Any:
    return announcements_rule(reader.context, now)


ANNOUNCEMENTS_ORDER = col(Post.pinned_until).desc()  # most recently pinned first


def home_lead(reader: Principal, now: datetime) -> tuple[Any, Any]:
    """What leads a first page of the home timeline, as ``page_of_posts``'s ``lead``."""
    return announcements_condition(reader, now), ANNOUNCEMENTS_ORDER


def page_statement(
    posts: Any, condition: Any, *, before: Any, count: Any, lead: tuple[Any, Any, Any] | None = None
) -> Any:
    """``posts`` (a ``posts_seen_by`` query, maybe joined) matching ``condition``: ``count`` at
    most, newest first, older than ``before`` unless it is None; and with ``lead`` = (posts,
    condition, order), up to ``MAX_PINNED`` of those in the same statement with UNION ALL
    (rows then carry a ``lead`` column: ``read_page(..., led=True)``)."""
    query = posts.where(condition)
    if before is not None:
        query = query.where(col(Post.id) < before)
    query = query.order_by(col(Post.id).desc()).limit(count)
    if lead is None:
        return query
    lead_posts, lead_condition, lead_order = lead
    pinned = lead_posts.where(lead_condition).order_by(lead_order).limit(MAX_PINNED)
    both = union_all(
        select(query.add_columns(literal(0).label("lead")).subquery()),
        select(pinned.add_columns(literal(1).label("lead")).subquery()),
    ).subquery()
    post = aliased(Post, both)
    return select(post, both.c.handle, both.c.display_name, both.c.mine).add_columns(both.c.lead)


async def read_page(
    session: AsyncSession, statement: Any, params: dict[str, Any] | None = None, *, led: bool
) -> tuple[list[Any], list[Any]]:
    """The rows of a ``page_statement``, newest first, and (``led``) the leading ones apart."""
    rows = (await session.execute(statement, params)).all()
    if not led:
        return list(rows), []
    regular = sorted((r[:4] for r in rows if not r.lead), key=lambda r: r[0].id, reverse=True)
    leading = sorted((r[:4] for r in rows if r.lead), key=_pin_key, reverse=True)
    return regular, leading


async def page_of_posts(
    session: AsyncSession,
    reader: Principal,
    condition: Any,
    *,
    before: uuid.UUID | None,
    limit: int,
    source: Any = None,
    lead: tuple[Any, Any] | None = None,
) -> tuple[list[Any], list[Any]]:
    """One statement: up to ``limit + 1`` posts of ``source`` newest first, strictly older than
    ``before``; and on a first page, those matching ``lead`` = (condition, order), which come
    first (pinned posts), fetched in the same statement with UNION ALL. ``source`` is a
    ``posts_for`` query (the default), maybe narrowed (``visible_posts``) or joined (the tag
    timeline joins its tag table)."""
    posts = source if source is not None else posts_for(reader)
    leading = (posts, *lead) if lead is not None and before is None else None
    statement = page_statement(posts, condition, before=before, count=limit + 1, lead=leading)
    return await read_page(session, statement, led=leading is not None)


def _pin_key(row: Any) -> tuple[datetime, uuid.UUID]:
    post: Post = row[0]
    return (post.group_pinned_at or post.pinned_until or post.created_at, post.id)
