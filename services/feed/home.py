"""The home timeline's statements, built once.

The home timeline is the busiest read of the suite. On PostgreSQL it runs on asyncpg directly,
the database writes each post's JSON (decision 0011), and pages come from the reader's inbox
(``services.feed.inbox``; decision 0012), read on demand below it: the second half of this
module.
Elsewhere (SQLite) its four SQLAlchemy shapes (first page or a later one; the reader's
followees and groups as literal lists, or as subqueries for readers with very many) are built
once, with bound parameters, as Core selects of the post's columns: the compiled form is
cached, and rows are read without ORM objects. Both select exactly what
``timelines.home_condition`` and ``timelines.announcements_condition`` select over
``timelines.posts_for`` (decision 0006); the feed's tests run against both paths.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, and_, bindparam, case, func, literal_column, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.db import Database
from services.feed import inbox, timelines
from services.feed.models import REACTION_KINDS, Follow, MembershipReplica, PersonaReplica, Post, Reaction
from services.feed.timelines import ACTIVE_AUTHOR, MAX_PINNED, Sources

PERSONA: BindParameter[Any] = bindparam("persona")
COUNT_COLUMNS = [(kind, f"{kind}_count") for kind in REACTION_KINDS]
POST = Post.__table__  # type: ignore[attr-defined]


def _base() -> Any:
    bits = case(*[(col(Reaction.kind) == kind, 1 << i) for i, kind in enumerate(REACTION_KINDS)], else_=0)
    mine = (
        select(func.coalesce(func.sum(bits), 0))
        .where(col(Reaction.post_id) == POST.c.id, col(Reaction.persona_id) == PERSONA)
        .scalar_subquery()
    )
    return (
        select(*POST.c, col(PersonaReplica.handle), col(PersonaReplica.display_name), mine.label("mine"))
        .select_from(POST.outerjoin(PersonaReplica.__table__, col(PersonaReplica.id) == POST.c.author_id))  # type: ignore[attr-defined]
        .where(POST.c.deleted_at.is_(None), ACTIVE_AUTHOR)
    )


def _statement(*, first_page: bool, inline: bool) -> Any:
    if inline:
        authors = POST.c.author_id.in_(bindparam("authors", expanding=True))
        groups = POST.c.group_id.in_(bindparam("groups", expanding=True))
    else:
        followees = select(col(Follow.followee_id)).where(col(Follow.follower_id) == PERSONA)
        authors = or_(POST.c.author_id == PERSONA, POST.c.author_id.in_(followees))
        mine = select(col(MembershipReplica.group_id)).where(col(MembershipReplica.persona_id) == PERSONA)
        groups = POST.c.group_id.in_(mine)
    now: BindParameter[Any] = bindparam("now")
    condition = and_(
        POST.c.context == bindparam("ctx"),
        or_(
            and_(POST.c.audience.in_(("organisation", "followers")), authors),
            and_(POST.c.audience == "group", groups),
        ),
        or_(POST.c.pinned_until.is_(None), POST.c.pinned_until <= now),
    )
    regular = _base().where(condition)
    if not first_page:
        regular = regular.where(POST.c.id < bindparam("before"))
    regular = regular.order_by(POST.c.id.desc()).limit(bindparam("limit"))
    if not first_page:
        return regular.add_columns(literal_column("0").label("lead"))
    pinned = (
        _base()
        .where(
            POST.c.context == bindparam("ctx"), POST.c.audience == "organisation", POST.c.pinned_until > now
        )
        .order_by(POST.c.pinned_until.desc())
        .limit(MAX_PINNED)
    )
    return union_all(
        select(regular.add_columns(literal_column("0").label("lead")).subquery()),
        select(pinned.add_columns(literal_column("1").label("lead")).subquery()),
    )


SOURCES: Any = union_all(
    select(literal_column("'f'").label("kind"), col(Follow.followee_id).label("source")).where(
        col(Follow.follower_id) == PERSONA
    ),
    select(literal_column("'g'").label("kind"), col(MembershipReplica.group_id).label("source")).where(
        col(MembershipReplica.persona_id) == PERSONA
    ),
).limit(bindparam("cap"))


async def home_sources(session: AsyncSession, persona: uuid.UUID) -> Sources | None:
    """The reader's followees and groups, or None when there are more than
    ``MAX_INLINE_SOURCES`` (the page then uses subqueries instead of literal lists)."""
    cap = timelines.MAX_INLINE_SOURCES
    rows = (await session.execute(SOURCES, {"persona": persona, "cap": cap + 1})).all()
    if len(rows) > cap:
        return None
    return Sources(
        followees=[_uuid(r[1]) for r in rows if r[0] == "f"],
        groups=[_uuid(r[1]) for r in rows if r[0] == "g"],
    )


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def post_json(row: Any, now: datetime) -> dict[str, Any]:
    """A row of ``home_page`` in the shape of ``schemas.PostPublic``, ready to serialise: the
    same fields as ``timelines.post_public`` without building and validating models (a page
    has twenty posts; tests compare the two shapes)."""
    mine = int(row.mine or 0)
    return {
        "id": row.id,
        "author": {"id": row.author_id, "handle": row.handle, "display_name": row.display_name},
        "context": row.context,
        "audience": row.audience,
        "group_id": row.group_id,
        "body": row.body,
        "mentions": [{"id": m["id"], "handle": m["handle"]} for m in row.mentions or []],
        "tags": list(row.tags or []),
        "links": [{"url": link["url"], "title": link.get("title")} for link in row.links or []],
        "pinned": bool(row.pinned_until and row.pinned_until > now) or row.group_pinned_at is not None,
        "pinned_until": row.pinned_until,
        "reactions": {
            "counts": {kind: row._mapping[column] for kind, column in COUNT_COLUMNS},
            "mine": [kind for i, kind in enumerate(REACTION_KINDS) if mine & (1 << i)],
        },
        "comment_count": row.comment_count,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "edited_at": row.edited_at,
    }


STATEMENTS = {
    (first_page, inline): _statement(first_page=first_page, inline=inline)
    for first_page in (True, False)
    for inline in (True, False)
}


async def home_page(
    session: AsyncSession,
    persona: uuid.UUID,
    context: str,
    sources: Sources | None,
    *,
    before: uuid.UUID | None,
    limit: int,
    now: datetime,
) -> tuple[list[Any], list[Any]]:
    """Up to ``limit + 1`` posts newest first, older than ``before``; on a first page also the
    pinned announcements, which lead (most recently pinned first). Rows carry the post's
    columns, ``handle``, ``display_name`` and ``mine`` (the reader's reactions as bits)."""
    params: dict[str, Any] = {"persona": persona, "ctx": context, "now": now, "limit": limit + 1}
    if sources is not None:
        params["authors"] = [persona, *sources.followees]
        params["groups"] = sources.groups
    if before is not None:
        params["before"] = before
    statement = STATEMENTS[(before is None, sources is not None)]
    rows = (await session.execute(statement, params)).all()
    regular = sorted((r for r in rows if not r.lead), key=lambda r: r.id, reverse=True)
    leading = sorted(
        (r for r in rows if r.lead),
        key=lambda r: (r.group_pinned_at or r.pinned_until or r.created_at, r.id),
        reverse=True,
    )
    return regular, leading


# PostgreSQL: the page as JSON, built by the database --------------------------------------------
#
# On PostgreSQL the home timeline skips SQLAlchemy and Python's shaping altogether: one
# statement on asyncpg reads a page from the reader's inbox, two read one on demand (the
# reader's sources as two arrays, then the page), and the page's rows come back as the JSON text
# of ``schemas.PostPublic``, which the route joins into the body.
# ``test_home_items_have_exactly_the_shape_of_a_post`` holds the two shapes together.


def sql_timestamp(column: str) -> str:
    """A timestamptz as pydantic writes it: ``2026-01-02T03:04:05Z``, with ``.ffffff`` before the
    ``Z`` only when there are microseconds; NULL stays NULL."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', {column}) = {column}"
        f" THEN '' ELSE to_char({utc}, '.US') END || 'Z'"
    )


_KINDS = ", ".join(f"'{kind}'" for kind in REACTION_KINDS)


# Each post's JSON is written by concatenating text, every value already JSON. Measured at
# 1,000,000 posts, the page statement costs the database about a fifth less CPU than with
# json_build_object (which looks each value's type up again on every row), and the text is
# compact (no blank after the colons and commas it writes), so the page is smaller too. Each of
# these gives the JSON of a value, or ``null``: a NULL must never reach the concatenation,
# which would make the whole document NULL.
def _json_string(value: str) -> str:
    return f"coalesce(to_json({value})::text, 'null')"  # escaped as json_build_object escapes


def _json_uuid(value: str) -> str:
    return f"""coalesce('"' || {value} || '"', 'null')"""


def _json_raw(value: str) -> str:
    """A number, a boolean or a json column: its text is its JSON."""
    return f"coalesce(({value})::text, 'null')"


def _json_timestamp(value: str) -> str:
    return f"""coalesce('"' || {sql_timestamp(value)} || '"', 'null')"""


def _json_object(*fields: tuple[str, str]) -> str:
    """A JSON object of (key, JSON text) pairs; the keys are this module's constants."""
    parts = [f"'{'{' if i == 0 else ','}\"{key}\":' || {value}" for i, (key, value) in enumerate(fields)]
    return "(" + " || ".join(parts) + " || '}')"


_MINE = f"""(SELECT json_agg(r.kind ORDER BY array_position(ARRAY[{_KINDS}]::varchar[], r.kind))
             FROM reaction r WHERE r.post_id = p.id AND r.persona_id = $1)"""
# The statements are put together from this module's constants only (no input: every value
# is a bound parameter), hence the S608 exemption in pyproject.toml.
_DOCUMENT = _json_object(
    ("id", _json_uuid("p.id")),
    (
        "author",
        _json_object(
            ("id", _json_uuid("p.author_id")),
            ("handle", _json_string("a.handle")),
            ("display_name", _json_string("a.display_name")),
        ),
    ),
    ("context", _json_string("p.context")),
    ("audience", _json_string("p.audience")),
    ("group_id", _json_uuid("p.group_id")),
    ("body", _json_string("p.body")),
    ("mentions", _json_raw("p.mentions")),
    ("tags", _json_raw("p.tags")),
    ("links", _json_raw("p.links")),
    ("pinned", _json_raw("coalesce(p.pinned_until > $3, false) OR p.group_pinned_at IS NOT NULL")),
    ("pinned_until", _json_timestamp("p.pinned_until")),
    (
        "reactions",
        _json_object(
            ("counts", _json_object(*((kind, _json_raw(f"p.{column}")) for kind, column in COUNT_COLUMNS))),
            ("mine", f"coalesce({_MINE}::text, '[]')"),
        ),
    ),
    ("comment_count", _json_raw("p.comment_count")),
    ("created_at", _json_timestamp("p.created_at")),
    ("updated_at", _json_timestamp("p.updated_at")),
    ("edited_at", _json_timestamp("p.edited_at")),
)
# An author's status is looked up per candidate row (a subplan): joined instead, a reader with
# few sources got a hash join over every persona.
_VISIBLE = """p.deleted_at IS NULL AND p.context = $2
      AND coalesce((SELECT a.status = 'active' FROM persona_replica a WHERE a.id = p.author_id), true)"""
# On demand (below an inbox's floor, or for a reader without one on a later page).
# $1 reader, $2 context, $3 now, $4 followees (with the reader), $5 groups, $6 limit, [$7 before]
_REGULAR = f"""SELECT p.*, 0 AS lead FROM post p
    WHERE {_VISIBLE}
      AND ((p.audience IN ('organisation', 'followers') AND p.author_id = ANY($4::uuid[]))
           OR (p.audience = 'group' AND p.group_id = ANY($5::uuid[])))
      AND (p.pinned_until IS NULL OR p.pinned_until <= $3){{before}}
    ORDER BY p.id DESC LIMIT $6"""
_PINNED = f"""SELECT p.*, 1 AS lead FROM post p
    WHERE {_VISIBLE} AND p.audience = 'organisation' AND p.pinned_until > $3
    ORDER BY p.pinned_until DESC LIMIT {MAX_PINNED}"""


# The author's name is looked up per row of the page: as a plain join, the generic plan, which
# cannot know the LIMIT, hashed every persona for each page (0.8 ms at 10,000 personas, and
# growing with them). The LIMIT 1 (on a key) keeps the lookup from being flattened into a join.
def _outer(rows: str) -> str:
    """The page over ``rows``: each row's JSON, leading rows first, then newest first."""
    return f"""SELECT p.lead, p.id, {_DOCUMENT} AS doc
FROM ({rows}) p LEFT JOIN LATERAL (
    SELECT a.handle, a.display_name FROM persona_replica a WHERE a.id = p.author_id LIMIT 1) a ON true
ORDER BY p.lead DESC,
    CASE WHEN p.lead = 1 THEN coalesce(p.group_pinned_at, p.pinned_until, p.created_at) END DESC,
    p.id DESC"""


PG_FIRST_PAGE = _outer(f"({_REGULAR.format(before='')}) UNION ALL ({_PINNED})")
PG_LATER_PAGE = _outer(_REGULAR.format(before=" AND p.id < $7"))
PG_SOURCES = inbox.SOURCES.format(reader="$1")

# From the reader's inbox (decision 0012): its newest entries, with what the inbox does not
# decide filtered here (deleted posts, authors no longer active, posts still pinned), and last
# a row (lead 2) with the inbox's floor when the reader has an inbox.
# $1 reader, $2 context, $3 now, $4 limit, [$5 before]
_INBOX = f"""SELECT p.*, 0 AS lead FROM home_entry e JOIN post p ON p.id = e.post_id
    WHERE e.reader_id = $1 AND {_VISIBLE}
      AND (p.pinned_until IS NULL OR p.pinned_until <= $3){{before}}
    ORDER BY e.post_id DESC LIMIT $4"""
_FLOOR = "(SELECT 2, i.floor_id, NULL FROM home_inbox i WHERE i.reader_id = $1)"
_INBOX_FIRST = _outer(f"({_INBOX.format(before='')}) UNION ALL ({_PINNED})")
_INBOX_LATER = _outer(_INBOX.format(before=" AND e.post_id < $5"))
PG_INBOX_FIRST_PAGE = f"({_INBOX_FIRST}) UNION ALL {_FLOOR}"
PG_INBOX_LATER_PAGE = f"({_INBOX_LATER}) UNION ALL {_FLOOR}"


async def home_page_json(
    database: Database,
    persona: uuid.UUID,
    context: str,
    *,
    before: uuid.UUID | None,
    older: bool,
    limit: int,
    now: datetime,
    inbox_size: int,
) -> tuple[list[str], uuid.UUID | None, bool]:
    """PostgreSQL: the page's items as JSON texts (pinned announcements first on a first page),
    the id to continue after (None on the last page), and whether the next page lies below the
    reader's inbox (``older``: read on demand).

    One statement reads a page from the inbox; two read one on demand (the reader's sources,
    then the page). A first page without an inbox builds it first; a page that runs out of
    inbox goes on on demand, and so does a later page whose inbox has gone meanwhile."""
    if older:
        assert before is not None
        return _page(await _on_demand(database, persona, context, now, limit + 1, before), limit, older=True)
    rows = await _from_inbox(database, persona, context, now, limit + 1, before)
    if (
        rows is None
        and before is None
        and await inbox.build(database, persona, context, size=inbox_size, now=now)
    ):
        rows = await _from_inbox(database, persona, context, now, limit + 1, before)
    if rows is None:
        # No inbox: the build timed out waiting for its lock, or the inbox was dropped the
        # moment it was built, or it has gone since this walk's first page.
        return _page(await _on_demand(database, persona, context, now, limit + 1, before), limit, older=True)
    floor = rows.pop()[1]
    shown = sum(1 for r in rows if not r[0])
    if shown > limit or floor is None:
        return _page(rows, limit, older=False)
    # The inbox ran out above its floor (it holds every post from the floor up): the page goes
    # on with older posts on demand.
    below = floor if before is None or before > floor else before
    rows += await _on_demand(database, persona, context, now, limit + 1 - shown, below)
    return _page(rows, limit, older=True)


async def _from_inbox(
    database: Database, persona: uuid.UUID, context: str, now: datetime, count: int, before: uuid.UUID | None
) -> list[Any] | None:
    """The page's rows from the reader's inbox, the floor's row last; None without an inbox."""
    if before is None:
        found = await database.raw_fetch(PG_INBOX_FIRST_PAGE, persona, context, now, count, generic_plan=True)
    else:
        found = await database.raw_fetch(
            PG_INBOX_LATER_PAGE, persona, context, now, count, before, generic_plan=True
        )
    rows = [r for r in found if r[0] != 2]
    floor = [r for r in found if r[0] == 2]
    # Entries without their inbox (left by a drop, until a build or retention clears them)
    # are not the reader's home.
    return [*rows, *floor] if floor else None


async def _on_demand(
    database: Database, persona: uuid.UUID, context: str, now: datetime, count: int, before: uuid.UUID | None
) -> Sequence[Any]:
    """Posts older than ``before`` (with the pinned announcements on a first page) by the home
    rule, read on demand (decision 0011). Planned for each execution: the best plan depends on
    how many sources the reader has."""
    ((followees, groups),) = await database.raw_fetch(PG_SOURCES, persona, generic_plan=True)
    authors = [persona, *followees]
    if before is None:
        return await database.raw_fetch(PG_FIRST_PAGE, persona, context, now, authors, groups, count)
    return await database.raw_fetch(PG_LATER_PAGE, persona, context, now, authors, groups, count, before)


def _page(rows: Sequence[Any], limit: int, *, older: bool) -> tuple[list[str], uuid.UUID | None, bool]:
    leading = [r[2] for r in rows if r[0]]
    regular = [r for r in rows if not r[0]]
    after = regular[limit - 1][1] if len(regular) > limit else None
    return [*leading, *(r[2] for r in regular[:limit])], after, older
