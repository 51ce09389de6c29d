"""Search in posts and comments (decision 0034, docs/search.md): what a reader sees whose text
matches a query in ``kit.search``'s syntax, best first within a window of the newest matches.

**What is searched is what the reader sees.** Posts come from ``timelines.visible_posts`` (the
one rule of decision 0028: the reader's context only, nothing of a group they cannot read,
nothing deleted, hidden, held or removed but their own hidden and held posts, nothing of an
author deactivated or erased, nothing of a group moderation hid); comments are those
``commenting.comment_shown`` on a post that rule lets the reader see. The query's filters only
narrow that: ``author:`` (a handle of the reader's context: an unknown one finds nothing),
``group:`` (a group's handle), ``tag:`` (posts with the tag; for comments, comments on such
posts), ``since:`` and ``until:`` (the whole day, in UTC).

**Ranking within a window.** A query ranks the newest ``SEARCH_WINDOW`` matches (ids are UUIDv7,
so id order is creation order), by ``kit.search.score``: relevance (PostgreSQL's
``ts_rank_cd`` with normalisation 1, SQLite's ``-bm25``) halved for every 30 days of age, the
newer first on a tie. Age is counted from the window's newest match rather than from now: the
order is the same, and a next page, read later, ranks the window exactly as the first did.
Ranking everything that matches would read every matching row, which a common word makes a
twentieth of the table; the window bounds a search to the rows that hold its matches.

**Reading the newest matches on PostgreSQL** (``_PostgresFinder``). A common word's newest matches
come cheapest from the primary key read backwards, a rare word's from the GIN index (all its
matches, then the newest). PostgreSQL's planner chooses between the two from its estimate of
how common the words are, and that estimate fails where it matters: a word missing from the
column's statistics is taken for a common one (at 1,000,000 posts, a word in one post in
10,000 was read along the whole primary key: 0.9 s). So the search measures instead: it reads
the newest rows in chunks (2,000, then four times more each time), each chunk a range of the
primary key scanned newest first, with the match written so that no index serves it: that plan
is bounded by the chunk, whatever the words. After a chunk that left the window short, it
compares what the matches found so far say: when they are sparse (under 1 % of the rows read)
and fetching every match of the rest of the table from the GIN index costs less than reading
on (``_bitmap_cheaper``), it does that, in a materialised CTE that no scan along the primary
key can serve, a range of ids at a time when the density is known (``_PostgresFinder._bitmap``);
otherwise it reads the next chunk. A range's blocks come from the BRIN index of ids, which
PostgreSQL ANDs with the GIN index; the last read, every match left, uses no index of ids
(decision 0048). The search's connections join by nested loops only (``NESTED_LOOPS``). At
1,000,000 posts PostgreSQL spends about 6 ms of CPU a search on a word in 5 % of posts (two
chunks), 3 ms on a word in 0.01 % (a chunk, then every match from the GIN index) and 7.5 ms on
a phrase in 0.5 % (a chunk, then its candidates in one range of ids), planning included.
SQLite reads its FTS5 index's matches and sorts them.

**Statements compiled once** (``search_sql``, decision 0041). On PostgreSQL each statement is
compiled once for each shape of query, from the same rule, and runs on asyncpg directly; the
database writes each post found as the home page's JSON. Every value of a filter is a named
parameter on SQLite too (``_narrowing``).

**Pages.** A cursor (``kit.search.Position``) holds the window's newest id and an offset into
its ranking; a next page ranks the same window again (ids up to that one: what was posted since
stays out) and takes the next slice. Once a full window is read, pages go on with the older
matches newest first (keyset on id below the window), the first of them filling the rest of
the window's last page. A cursor belongs to its query (``kit.search.cursor_scope``): another
query's is a 400.

An empty query (only stop words, operators or exclusions) finds nothing, without a statement.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple, Protocol

from pydantic_core import to_json
from sqlalchemy import bindparam, column, func, literal_column, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from domain.principal import Principal
from kit.compiled import Compiled
from kit.db import Database, RawConnection
from kit.search import (
    SEARCH_WINDOW,
    Position,
    SearchQuery,
    cursor_scope,
    decode_position,
    encode_position,
    highlight,
    parse,
    pg_terms,
    position_id,
    score,
    sqlite_match,
)
from kit.timeutil import utcnow
from services.feed import search_sql
from services.feed.commenting import comment_shown
from services.feed.content import tag_name
from services.feed.models import (
    COMMENT_SEARCH,
    POST_SEARCH,
    Comment,
    GroupReplica,
    PersonaReplica,
    Post,
    PostTag,
)
from services.feed.schemas import CommentSearchItem, PostSearchItem, comment_public, post_public
from services.feed.search_sql import (
    AUTHOR,
    BELOW,
    BOUND_READER,
    CONTEXT,
    COUNT,
    GROUP,
    HIGHEST,
    IDS,
    LOWEST,
    NOW,
    OFFSET,
    OLDEST,
    READER,
    SINCE,
    TAG,
    UNTIL,
    Statements,
)
from services.feed.timelines import me, shown, visible_posts, visible_to

DAY = timedelta(days=1)
# ``until:`` a day with no next: every post is before this.
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Found:
    """A page of a search: the JSON of each item in rank order, and where the next page starts
    (None after the last)."""

    items: Sequence[str]
    after: str | None


@dataclass(frozen=True, slots=True)
class Target:
    """What a search reads: posts or comments."""

    kind: str  # the cursor's scope: "posts", "comments"
    model: type[Post] | type[Comment]
    document: Any  # the PostgreSQL tsvector column
    fts: str  # the SQLite FTS5 table

    @property
    def rows(self) -> Any:
        """The model's table."""
        return self.model.__table__  # type: ignore[union-attr]


POSTS = Target("posts", Post, POST_SEARCH, "post_search")
COMMENTS = Target("comments", Comment, COMMENT_SEARCH, "comment_search")


class Hit(NamedTuple):
    """A match as the window ranks it."""

    id: uuid.UUID
    created_at: datetime
    relevance: float | None


async def posts(
    session: AsyncSession, database: Database, reader: Principal, q: str, *, cursor: str | None, limit: int
) -> Found:
    """A page of the posts ``reader`` sees that match the query ``q`` (a 422 when it cannot be
    one), each with its excerpt."""
    return await _find(session, database, POSTS, reader, q, cursor, limit)


async def comments(
    session: AsyncSession, database: Database, reader: Principal, q: str, *, cursor: str | None, limit: int
) -> Found:
    """A page of the comments ``reader`` sees that match the query ``q`` (a 422 when it cannot
    be one), each with its excerpt."""
    return await _find(session, database, COMMENTS, reader, q, cursor, limit)


def comments_seen(reader: Principal) -> Any:
    """The comments ``reader`` sees, with their authors' names (rows for
    ``schemas.comment_public``): ``commenting.comment_shown``, on posts ``shown`` and
    ``visible_to`` the reader (the post joined with its author's replica, as every read of
    posts is)."""
    author = aliased(PersonaReplica)
    return (
        select(Comment, author.handle, author.display_name)
        .join(author, col(author.id) == col(Comment.author_id), isouter=True)
        .join(Post, col(Post.id) == col(Comment.post_id))
        .join(PersonaReplica, col(PersonaReplica.id) == col(Post.author_id), isouter=True)
        .where(shown(me(reader)), visible_to(reader), comment_shown(reader, author))
    )


def _seen(target: Target, reader: Principal) -> Any:
    return visible_posts(reader) if target is POSTS else comments_seen(reader)


async def _find(
    session: AsyncSession,
    database: Database,
    target: Target,
    reader: Principal,
    q: str,
    cursor: str | None,
    limit: int,
) -> Found:
    query = parse(q)
    scope = cursor_scope(target.kind, query)
    position = decode_position(scope, cursor)
    if query.empty:
        return Found([], None)
    values = await _values(session, reader, query)
    if values is None:
        return Found([], None)
    if database.is_postgres:
        made = search_sql.statements(target, query, lambda: _statements(target, query))
        values |= pg_terms(query)
        async with database.raw("custom", NESTED_LOOPS) as connection:
            ids, after = await _page(_PostgresFinder(connection, made, values), position, limit)
        if made.rows is not None:
            items = await _post_documents(database, made.rows, values, ids, query)
            return Found(items, _after(scope, after))
    else:
        seen = _seen(target, reader).where(*_narrowing(target.model, query))
        lite = _SqliteFinder(session, target, seen, query, values)
        ids, after = await _page(lite, position, limit)
    return Found(await _items(session, target, reader, query, ids), _after(scope, after))


def _after(scope: str, after: Position | None) -> str | None:
    return None if after is None else encode_position(scope, after)


def _statements(target: Target, query: SearchQuery) -> Statements:
    seen = _seen(target, BOUND_READER)
    return search_sql.build(target, seen, _narrowing(target.model, query), query)


# Filters ---------------------------------------------------------------------------------------


def _narrowing(model: type[Post] | type[Comment], query: SearchQuery) -> list[Any]:
    """The conditions of the query's filters, each value a named parameter (``_values``): the
    item's author and date, its post's group and tag (a comment is read joined with its
    post)."""
    filters = query.filters
    conditions = []
    if filters.author is not None:
        conditions.append(col(model.author_id) == bindparam(AUTHOR))
    if filters.group is not None:
        conditions.append(col(Post.group_id) == bindparam(GROUP))
    if filters.tag is not None:
        conditions.append(
            col(Post.id).in_(
                select(PostTag.post_id).where(
                    col(PostTag.context) == bindparam(CONTEXT), col(PostTag.tag) == bindparam(TAG)
                )
            )
        )
    if filters.since is not None:
        conditions.append(col(model.created_at) >= bindparam(SINCE))
    if filters.until is not None:
        conditions.append(col(model.created_at) < bindparam(UNTIL))
    return conditions


async def _values(session: AsyncSession, reader: Principal, query: SearchQuery) -> dict[str, Any] | None:
    """The reader and the values of the query's filters; None when ``author:`` or ``group:``
    names nothing in the reader's context (the search then finds nothing). ``tag:`` is the
    tag whatever its case or Unicode form (as the tag timeline reads it); ``since:`` from the
    day's first instant, ``until:`` to its last (UTC). Whether the reader may read a group's
    posts is the visibility rule's to say, as for any post."""
    filters = query.filters
    values: dict[str, Any] = {READER: me(reader), CONTEXT: reader.context}
    if filters.author is not None:
        values[AUTHOR] = await session.scalar(
            select(PersonaReplica.id).where(
                col(PersonaReplica.handle) == filters.author, col(PersonaReplica.context) == reader.context
            )
        )
        if values[AUTHOR] is None:
            return None
    if filters.group is not None:
        values[GROUP] = await session.scalar(
            select(GroupReplica.id).where(
                col(GroupReplica.handle) == filters.group, col(GroupReplica.context) == reader.context
            )
        )
        if values[GROUP] is None:
            return None
    if filters.tag is not None:
        values[TAG] = tag_name(filters.tag)
    if filters.since is not None:
        values[SINCE] = _midnight(filters.since)
    if filters.until is not None:
        values[UNTIL] = END_OF_TIME if filters.until >= date.max else _midnight(filters.until + DAY)
    return values


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


# The window and the pages ----------------------------------------------------------------------


class _Finder(Protocol):
    """Where a search reads the newest matches: ``_SqliteFinder``, ``_PostgresFinder``."""

    async def newest(self, count: int, *, below: uuid.UUID | None, inclusive: bool) -> list[Hit]:
        """The newest ``count`` matches whose id is below ``below`` (or equal, ``inclusive``),
        newest first."""
        ...


async def _page(find: _Finder, position: Position, limit: int) -> tuple[list[uuid.UUID], Position | None]:
    """The ids of a page in rank order, and where the next one starts (module docstring)."""
    ids: list[uuid.UUID] = []
    older_than = position_id(position.older_than)
    if older_than is None:
        window = await find.newest(SEARCH_WINDOW, below=position_id(position.top), inclusive=True)
        ranked = _ranked(window)
        end = position.offset + limit
        ids = ranked[position.offset : end]
        if end < len(ranked):
            return ids, Position(top=str(window[0].id), offset=end)
        if len(window) < SEARCH_WINDOW:
            return ids, None
        older_than = window[-1].id
    wanted = limit - len(ids)
    older = [hit.id for hit in await find.newest(wanted + 1, below=older_than, inclusive=False)]
    ids += older[:wanted]
    if len(older) <= wanted:
        return ids, None
    return ids, Position(older_than=str(older[wanted - 1] if wanted else older_than))


class _SqliteFinder:
    """SQLite: the FTS5 index's matches, newest first."""

    def __init__(
        self, session: AsyncSession, target: Target, seen: Any, query: SearchQuery, values: dict[str, Any]
    ) -> None:
        fts = table(target.fts, column("rowid"))
        name: Any = literal_column(target.fts)
        own_rowid: Any = literal_column(f"{target.model.__tablename__}.rowid")
        self.key = col(target.model.id)
        self.matching = (
            seen.join(fts, fts.c.rowid == own_rowid)
            .where(name.op("MATCH")(sqlite_match(query)))
            .with_only_columns(self.key, col(target.model.created_at), (-func.bm25(name)).label("relevance"))
        )
        self.session, self.values = session, values

    async def newest(self, count: int, *, below: uuid.UUID | None, inclusive: bool) -> list[Hit]:
        statement = self.matching
        if below is not None:
            statement = statement.where(self.key <= below if inclusive else self.key < below)
        statement = statement.order_by(self.key.desc()).limit(count)
        return [Hit(*row) for row in await self.session.execute(statement, self.values)]


# How the newest matches are read on PostgreSQL (module docstring): the newest rows first, a
# chunk at a time, each chunk four times the one before; after each chunk, when the matches
# found so far are sparse, the GIN index's matches below it instead, all of them, newest first.
CHUNK = 10  # the first chunk, in windows' worth of rows
CHUNK_GROWTH = 4
SPARSE = 0.01  # at most this share of the rows read matching, the GIN index may be cheaper
# What a match read from the GIN index costs (a heap fetch and a recheck), in rows read along
# the primary key: measured at 1,000,000 posts, 2.0 µs against 0.37 µs.
BITMAP_ROW_COST = 5.0
# The GIN index's matches are read in a range of this many times the rows that the density of
# the matches found so far says hold the rest, of at most BITMAP_MAX_ROWS rows (the range's
# blocks come from the BRIN index of ids for next to nothing, but every row of a block that
# holds a match is checked again: 60,000 rows at 1,000,000 posts cost 6 ms, 100,000 cost 10),
# in at most BITMAP_RANGES ranges (``_PostgresFinder._bitmap``).
BITMAP_SPAN = 1.5
BITMAP_MAX_ROWS = 60_000
BITMAP_RANGES = 4
# Settings of the connections searches run on: joins only by nested loops. Every join of a
# search is a key lookup for each match of a bounded set (a chunk's, a range's), but the
# planner takes a word missing from its statistics for one in 0.5 % of rows, and for the
# thousands of matches it then expects it would hash the whole persona replica (a rare word at
# 1,000,000 posts: 2.0 ms a statement, 1.1 with nested loops; decision 0048).
NESTED_LOOPS = {"enable_hashjoin": "off", "enable_mergejoin": "off"}


@dataclass
class _PostgresFinder:
    """Reads the newest matches with ``search_sql``'s statements, on one connection."""

    connection: RawConnection
    made: Statements
    values: dict[str, Any]

    async def fetch(self, compiled: Compiled, **values: Any) -> list[Any]:
        return list(await self.connection.fetch(compiled.sql, *compiled.args({**self.values, **values})))

    async def newest(self, count: int, *, below: uuid.UUID | None, inclusive: bool) -> list[Hit]:
        found: list[Hit] = []
        chunk, read = CHUNK * SEARCH_WINDOW, 0
        bound = HIGHEST if below is None else below
        newest: uuid.UUID | None = None
        while True:
            # The oldest id of the chunk (None when fewer rows are left), how many rows the
            # table holds (the planner's count; -1 before it was first analysed), and the
            # chunk's newest id.
            edge = self.made.edge[inclusive]
            ((oldest, size, top),) = await self.fetch(edge, **{BELOW: bound, OFFSET: chunk - 1})
            size = float(size if size is not None else -1)
            newest = newest or top
            # The newest matches of the chunk: the match is written so that the GIN index
            # cannot serve it, and the range is known: the plan is that scan, bounded by the
            # chunk, whatever the words, with no estimate of how common they are to mislead it.
            rows = await self.fetch(
                self.made.chunk[inclusive],
                **{BELOW: bound, OLDEST: LOWEST if oldest is None else oldest, COUNT: count - len(found)},
            )
            found += [Hit(*row) for row in rows]
            if len(found) >= count:
                return found[:count]
            if oldest is None:  # the chunk held the oldest rows
                return found
            read += chunk
            bound, inclusive = oldest, False
            if _bitmap_cheaper(len(found), read, size, count - len(found)):
                # rows a millisecond of ids held, newest to oldest of what was read
                rate = read / max(_millisecond(newest) - _millisecond(oldest), 1) if newest else 0.0
                wanted, density = count - len(found), len(found) / read
                return found + await self._bitmap(wanted, oldest, density, rate, size - read)
            chunk *= CHUNK_GROWTH

    async def _bitmap(
        self, count: int, below: uuid.UUID, density: float, rate: float, rest: float
    ) -> list[Hit]:
        """The newest ``count`` matches below ``below`` from the GIN index.

        Reading them all first reads the table for every match (a phrase in 0.5 % of
        1,000,000 posts: 5,000 rows, 15 ms). When some were found already, their ``density``
        says how many rows should hold the rest, and ids say when those rows were written
        (UUIDv7: the millisecond leads), at ``rate`` rows a millisecond: the index's matches
        are read in the range of ids that many rows take (``BITMAP_SPAN`` times, at most
        ``BITMAP_MAX_ROWS``), and PostgreSQL then ANDs the index's bitmap with the blocks
        that the BRIN index of ids gives for the range, and reads only the blocks in both
        (the phrase: about 4 ms for 45,000 rows). Then the range below, up to
        ``BITMAP_RANGES`` of them; the last reads every match left."""
        found: list[Hit] = []
        rows = min(count / density * BITMAP_SPAN, BITMAP_MAX_ROWS) if density > 0 else 0.0
        for attempt in range(BITMAP_RANGES):
            lowest = None
            if rows and rate and rest > rows and attempt < BITMAP_RANGES - 1:
                top = _millisecond(below)
                lowest = _at_millisecond(max(min(top - math.ceil(rows / rate), top - 1), 0))
            wanted = count - len(found)
            if lowest is None:
                rows_found = await self.fetch(self.made.rest, **{BELOW: below, COUNT: wanted})
            else:
                rows_found = await self.fetch(
                    self.made.bitmap, **{BELOW: below, OLDEST: lowest, COUNT: wanted}
                )
            hits = [Hit(*row) for row in rows_found]
            found += sorted(hits, key=lambda hit: hit.id, reverse=True)
            if len(found) >= count or lowest is None:
                break
            below, rest = lowest, rest - rows
        return found[:count]


def _millisecond(key: uuid.UUID) -> int:
    """The millisecond a UUIDv7 was made at (its first 48 bits)."""
    return key.int >> 80


def _at_millisecond(millisecond: int) -> uuid.UUID:
    """The least UUIDv7 of a millisecond: every id made at it or later is at least this one."""
    return uuid.UUID(int=millisecond << 80)


def _bitmap_cheaper(found: int, read: int, size: float, wanted: int) -> bool:
    """Whether the rest of ``wanted`` matches comes cheaper from the GIN index than from more
    rows read along the primary key, ``found`` matches having come of the ``read`` newest rows
    of a table of ``size``: the scan reads about ``wanted / density`` more rows, the index
    fetches every match of the rest of the table, about ``density * rest`` of them. Only ever
    when matches are sparse: a common word's every match is most of the table."""
    density = found / read
    if density >= SPARSE:
        return False
    if density == 0:
        return True
    rest = max(size - read, 0.0)
    return BITMAP_ROW_COST * density * rest < wanted / density


def _ranked(window: Sequence[Hit]) -> list[uuid.UUID]:
    """The window's ids by score, the newer first on a tie; age counted from the window's newest
    match (module docstring)."""
    if not window:
        return []
    newest = max(hit.created_at for hit in window)
    scored = [
        (score(hit.relevance or 0.0, (newest - hit.created_at).total_seconds() / 86400), hit.id)
        for hit in window
    ]
    scored.sort(key=lambda pair: (pair[0], pair[1]), reverse=True)
    return [hit_id for _, hit_id in scored]


# The items -------------------------------------------------------------------------------------


async def _post_documents(
    database: Database,
    statement: Compiled,
    values: dict[str, Any],
    ids: list[uuid.UUID],
    query: SearchQuery,
) -> list[str]:
    """PostgreSQL: the JSON of each post of ``ids`` the reader still sees, in their order,
    with its excerpt (``schemas.PostSearchItem``: the post's fields, then ``highlight``).
    Its plan depends on none of the values (a key lookup per id), so it runs with its generic
    plan: planned each time, the JSON document alone cost more than reading the posts."""
    if not ids:
        return []
    arguments = statement.args({**values, IDS: ids, NOW: utcnow()})
    rows = await database.raw_fetch(statement.sql, *arguments, plan="generic")
    by_id = {row["id"]: row for row in rows}
    items = []
    for found in ids:
        row = by_id.get(found)
        if row is not None:
            excerpt = to_json(highlight(row["body"], query, row["lang"])).decode()
            items.append(f'{row["doc"][:-1]},"highlight":{excerpt}}}')
    return items


async def _items(
    session: AsyncSession,
    target: Target,
    reader: Principal,
    query: SearchQuery,
    ids: list[uuid.UUID],
) -> list[str]:
    """The JSON of each item of ``ids`` the reader still sees, in their order, with its
    excerpt, through the ORM (SQLite's posts, and comments)."""
    if not ids:
        return []
    statement = _seen(target, reader).where(col(target.model.id).in_(ids))
    by_id = {row[0].id: row for row in await session.execute(statement)}
    rows = [by_id[found] for found in ids if found in by_id]
    if target is POSTS:
        return [
            PostSearchItem(
                **dict(post_public(row)), highlight=highlight(row[0].body, query, row[0].lang)
            ).model_dump_json()
            for row in rows
        ]
    return [
        CommentSearchItem(
            **dict(comment_public(row[0], row[1], row[2])),
            highlight=highlight(row[0].body, query, row[0].lang),
        ).model_dump_json()
        for row in rows
    ]
