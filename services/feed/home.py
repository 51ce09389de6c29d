"""The home timeline's pages: the busiest read of the suite.

A page is the JSON text of each of its posts (``schemas.PostPublic``; pinned announcements lead
a first page), the id to continue after, and whether the next page lies below the reader's
inbox. The route joins the texts into the body without building models again.

- **On PostgreSQL** the page comes from the reader's inbox (``services.feed.inbox``; decision
  0012) and goes on on demand below it, through asyncpg directly; the database writes each
  post's JSON (decision 0011). The statements are ``services.feed.home_sql``'s.
- **Elsewhere** (SQLite) the page is a ``timelines.page_statement`` over
  ``timelines.home_rule``: the rule the event stream reads too (``home_condition``), with the
  reader's values as bound parameters so that the statement is built once. Each post goes
  through ``schemas.post_public``.

Both state one rule of who sees what, once each (see ``home_sql`` and ``timelines``);
``tests/feed/test_home_rules.py`` holds them together.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam

from domain.principal import Principal
from kit.db import Database
from services.feed import home_sql, inbox, timelines
from services.feed.home_sql import DOC, FLOOR, ID, PART, PINNED, REGULAR
from services.feed.schemas import post_public


@dataclass(frozen=True, slots=True)
class HomePage:
    items: list[str]  # each post's JSON, pinned announcements first on a first page
    after: uuid.UUID | None  # the last post shown when there are more, else None
    older: bool  # the next page lies below the reader's inbox (PostgreSQL: read on demand)


async def home_page(
    database: Database,
    reader: Principal,
    *,
    before: uuid.UUID | None,
    older: bool,
    limit: int,
    now: datetime,
    inbox_size: int,
) -> HomePage:
    """Up to ``limit`` posts older than ``before`` (``older``: below the reader's inbox)."""
    assert reader.persona_id is not None and reader.context is not None
    if database.is_postgres:
        return await _postgres_page(
            database,
            reader.persona_id,
            reader.context,
            before=before,
            older=older,
            limit=limit,
            now=now,
            inbox_size=inbox_size,
        )
    return await _page_of_home_condition(database, reader, before=before, limit=limit, now=now)


# Elsewhere: the SQLAlchemy condition ---------------------------------------------------------------


async def _page_of_home_condition(
    database: Database, reader: Principal, *, before: uuid.UUID | None, limit: int, now: datetime
) -> HomePage:
    """Two statements: the reader's sources (lists unless there are very many), then the page,
    with the pinned announcements on a first page."""
    async with database.read_sessionmaker() as session:
        sources = await timelines.home_sources(session, reader)
        params: dict[str, Any] = {"reader": reader.persona_id, "context": reader.context, "now": now}
        params["count"] = limit + 1
        if before is not None:
            params["before"] = before
        if sources is not None:
            params |= {"authors": sources.authors, "groups": sources.groups}
        statement = _statement(first_page=before is None, inline=sources is not None)
        rows, leading = await timelines.read_page(session, statement, params, led=before is None)
    after = rows[limit - 1][0].id if len(rows) > limit else None
    items = [post_public(row, now).model_dump_json() for row in [*leading, *rows[:limit]]]
    return HomePage(items, after, older=False)


@functools.cache
def _statement(*, first_page: bool, inline: bool) -> Any:
    """The page's statement, of ``timelines``' rule and pages, with the reader's values as bound
    parameters. Built once for each of its four shapes: building it costs more than running it
    (SQLite, 2,000 posts, a reader with 150 followees: about 7 ms of CPU a page when built for
    each request, 3.5 ms when built once)."""
    reader: BindParameter[Any] = bindparam("reader")
    context: BindParameter[Any] = bindparam("context")
    now: BindParameter[Any] = bindparam("now")
    posts = timelines.posts_seen_by(reader)
    sources = timelines.BOUND_SOURCES if inline else None
    lead = (posts, timelines.announcements_rule(context, now), timelines.ANNOUNCEMENTS_ORDER)
    return timelines.page_statement(
        posts,
        timelines.home_rule(reader, context, now, sources),
        before=None if first_page else bindparam("before"),
        count=bindparam("count"),
        lead=lead if first_page else None,
    )


# PostgreSQL: the page as JSON, built by the database -------------------------------------------


async def _postgres_page(
    database: Database,
    persona: uuid.UUID,
    context: str,
    *,
    before: uuid.UUID | None,
    older: bool,
    limit: int,
    now: datetime,
    inbox_size: int,
) -> HomePage:
    """One statement reads a page from the inbox; two read one on demand (the reader's sources,
    then the page). A first page without an inbox builds it first; a page that runs out of
    inbox goes on on demand, and so does a later page whose inbox has gone meanwhile."""
    if older:
        assert before is not None
        return _page(await _on_demand(database, persona, context, now, limit + 1, before), limit, older=True)
    found = await _from_inbox(database, persona, context, now, limit + 1, before)
    if (
        found is None
        and before is None
        and await inbox.build(database, persona, context, size=inbox_size, now=now)
    ):
        found = await _from_inbox(database, persona, context, now, limit + 1, before)
    if found is None:
        # No inbox: the build timed out waiting for its lock, or the inbox was dropped the
        # moment it was built, or it has gone since this walk's first page.
        return _page(await _on_demand(database, persona, context, now, limit + 1, before), limit, older=True)
    rows, floor = found
    shown = sum(1 for row in rows if row[PART] == REGULAR)
    if shown > limit or floor is None:
        return _page(rows, limit, older=False)
    # The inbox ran out above its floor (it holds every post from the floor up): the page goes
    # on with older posts on demand.
    below = floor if before is None or before > floor else before
    rows = [*rows, *await _on_demand(database, persona, context, now, limit + 1 - shown, below)]
    return _page(rows, limit, older=True)


async def _from_inbox(
    database: Database, persona: uuid.UUID, context: str, now: datetime, count: int, before: uuid.UUID | None
) -> tuple[list[Any], uuid.UUID | None] | None:
    """The page's rows from the reader's inbox and the inbox's floor; None without an inbox."""
    if before is None:
        found = await database.raw_fetch(
            home_sql.INBOX_FIRST_PAGE, persona, context, now, count, plan="generic"
        )
    else:
        found = await database.raw_fetch(
            home_sql.INBOX_LATER_PAGE, persona, context, now, count, before, plan="generic"
        )
    floor = [row[ID] for row in found if row[PART] == FLOOR]
    # Entries without their inbox (left by a drop, until a build or retention clears them)
    # are not the reader's home.
    if not floor:
        return None
    return [row for row in found if row[PART] != FLOOR], floor[0]


async def _on_demand(
    database: Database, persona: uuid.UUID, context: str, now: datetime, count: int, before: uuid.UUID | None
) -> Sequence[Any]:
    """Posts older than ``before`` (with the pinned announcements on a first page) by the home
    rule, read on demand (decision 0011). Planned for each execution: the best plan depends on
    how many sources the reader has."""
    (sources,) = await database.raw_fetch(home_sql.SOURCES, persona, plan="generic")
    authors, groups = [persona, *sources["followees"]], sources["groups"]
    if before is None:
        return await database.raw_fetch(home_sql.FIRST_PAGE, persona, context, now, authors, groups, count)
    return await database.raw_fetch(
        home_sql.LATER_PAGE, persona, context, now, authors, groups, count, before
    )


def _page(rows: Sequence[Any], limit: int, *, older: bool) -> HomePage:
    leading = [row[DOC] for row in rows if row[PART] == PINNED]
    regular = [row for row in rows if row[PART] == REGULAR]
    after = regular[limit - 1][ID] if len(regular) > limit else None
    return HomePage([*leading, *(row[DOC] for row in regular[:limit])], after, older)
