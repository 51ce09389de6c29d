"""The home timeline's statements, built once.

The home timeline is the busiest read of the suite, and building its SQLAlchemy statement on
every request (a union, subqueries, a hundred bound ids) cost several times what the database
spends answering it. So its four shapes (first page or a later one; the reader's followees and
groups as literal lists, or as subqueries for readers with very many) are built once, with bound
parameters, as Core selects of the post's columns: the compiled form is cached, and rows are
read without ORM objects. What they select is exactly ``timelines.home_condition`` and
``timelines.announcements_condition`` over ``timelines.posts_for`` (decision 0006); the feed's
tests run against this path on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, and_, bindparam, case, func, literal_column, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.feed import timelines
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
