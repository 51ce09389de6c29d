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

**Reading the newest matches on PostgreSQL** (``_Finder``). A common word's newest matches
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
key can serve; otherwise it reads the next chunk. At 1,000,000 posts the database spends about
4 ms on a word in 5 % of posts (two chunks), 2 ms on a word in 0.01 % (a chunk, then the GIN
index) and 14 ms on a phrase in 0.5 % (a chunk, then its 5,000 candidates from the GIN index).
SQLite reads its FTS5 index's matches and sorts them.

**Pages.** A cursor (``kit.search.Position``) holds the window's newest id and an offset into
its ranking; a next page ranks the same window again (ids up to that one: what was posted since
stays out) and takes the next slice. Once a full window is read, pages go on with the older
matches newest first (keyset on id below the window), the first of them filling the rest of
the window's last page. A cursor belongs to its query (``kit.search.cursor_scope``): another
query's is a 400.

An empty query (only stop words, operators or exclusions) finds nothing, without a statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import cast, column, func, inspect, literal, literal_column, table, true
from sqlalchemy.dialects.postgresql import REGCLASS
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from domain.principal import Principal
from kit.search import (
    SEARCH_WINDOW,
    Position,
    SearchQuery,
    cursor_scope,
    decode_position,
    encode_position,
    highlight,
    parse,
    pg_tsquery,
    position_id,
    score,
    sqlite_match,
)
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
from services.feed.timelines import me, shown, visible_posts, visible_to

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Found:
    """A page of a search: its items in rank order, and where the next page starts (None after
    the last)."""

    items: Sequence[Any]
    after: str | None


@dataclass(frozen=True, slots=True)
class _Target:
    """What a search reads: posts or comments."""

    kind: str  # the cursor's scope: "posts", "comments"
    model: type[Post] | type[Comment]
    document: Any  # the PostgreSQL tsvector column
    fts: str  # the SQLite FTS5 table

    @property
    def rows(self) -> Any:
        """The model's table."""
        return inspect(self.model).local_table


POSTS = _Target("posts", Post, POST_SEARCH, "post_search")
COMMENTS = _Target("comments", Comment, COMMENT_SEARCH, "comment_search")


async def posts(session: AsyncSession, reader: Principal, q: str, *, cursor: str | None, limit: int) -> Found:
    """A page of the posts ``reader`` sees that match the query ``q`` (a 422 when it cannot be
    one), each with its excerpt."""
    query = parse(q)
    scope = cursor_scope(POSTS.kind, query)
    position = decode_position(scope, cursor)
    if query.empty:
        return Found([], None)
    narrowing = await _filters(session, reader, query, Post)
    if narrowing is None:
        return Found([], None)
    rows, after = await _search(session, POSTS, visible_posts(reader), narrowing, query, position, limit)
    items = [
        PostSearchItem(**dict(post_public(row)), highlight=highlight(row[0].body, query, row[0].lang))
        for row in rows
    ]
    return Found(items, None if after is None else encode_position(scope, after))


async def comments(
    session: AsyncSession, reader: Principal, q: str, *, cursor: str | None, limit: int
) -> Found:
    """A page of the comments ``reader`` sees that match the query ``q`` (a 422 when it cannot
    be one), each with its excerpt."""
    query = parse(q)
    scope = cursor_scope(COMMENTS.kind, query)
    position = decode_position(scope, cursor)
    if query.empty:
        return Found([], None)
    narrowing = await _filters(session, reader, query, Comment)
    if narrowing is None:
        return Found([], None)
    rows, after = await _search(session, COMMENTS, comments_seen(reader), narrowing, query, position, limit)
    items = [
        CommentSearchItem(
            **dict(comment_public(row[0], row[1], row[2])),
            highlight=highlight(row[0].body, query, row[0].lang),
        )
        for row in rows
    ]
    return Found(items, None if after is None else encode_position(scope, after))


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


# Filters ---------------------------------------------------------------------------------------


async def _filters(
    session: AsyncSession, reader: Principal, query: SearchQuery, model: type[Post] | type[Comment]
) -> list[Any] | None:
    """The conditions of the query's filters: the item's author and date, its post's group and
    tag (a comment is read joined with its post); None when a filter names nothing the reader's
    context holds (the search then finds nothing)."""
    found = await _named(session, reader, query)
    if found is None:
        return None
    author, group = found
    conditions = _dated(model, query)
    if author is not None:
        conditions.append(col(model.author_id) == author)
    if group is not None:
        conditions.append(col(Post.group_id) == group)
    if query.filters.tag is not None:
        conditions.append(_tagged(reader, query.filters.tag))
    return conditions


async def _named(
    session: AsyncSession, reader: Principal, query: SearchQuery
) -> tuple[uuid.UUID | None, uuid.UUID | None] | None:
    """The persona of ``author:`` and the group of ``group:``, by handle in the reader's
    context; None when either names nothing there. Whether the reader may read that group's
    posts is the visibility rule's to say, as for any post."""
    author = group = None
    if query.filters.author is not None:
        author = await session.scalar(
            select(PersonaReplica.id).where(
                col(PersonaReplica.handle) == query.filters.author,
                col(PersonaReplica.context) == reader.context,
            )
        )
        if author is None:
            return None
    if query.filters.group is not None:
        group = await session.scalar(
            select(GroupReplica.id).where(
                col(GroupReplica.handle) == query.filters.group, col(GroupReplica.context) == reader.context
            )
        )
        if group is None:
            return None
    return author, group


def _tagged(reader: Principal, tag: str) -> Any:
    """Posts with the tag, whatever its case or Unicode form (as the tag timeline reads it)."""
    return col(Post.id).in_(
        select(PostTag.post_id).where(
            col(PostTag.context) == reader.context, col(PostTag.tag) == tag_name(tag)
        )
    )


def _dated(model: type[Post] | type[Comment], query: SearchQuery) -> list[Any]:
    """``since:`` from the day's first instant, ``until:`` to its last (UTC)."""
    created = col(model.created_at)
    conditions = []
    if query.filters.since is not None:
        conditions.append(created >= _midnight(query.filters.since))
    if query.filters.until is not None and query.filters.until < date.max:
        conditions.append(created < _midnight(query.filters.until + DAY))
    return conditions


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


# The window and the pages ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Match:
    """The query on one database: the condition a row must meet, its relevance, and (SQLite)
    the FTS5 table to join."""

    condition: Any
    relevance: Any
    join: tuple[Any, Any] | None


def _match(session: AsyncSession, target: _Target, query: SearchQuery) -> _Match:
    if session.get_bind().dialect.name == "postgresql":
        tsquery = pg_tsquery(query)
        document = target.document
        return _Match(document.op("@@")(tsquery), func.ts_rank_cd(document, tsquery, 1), None)
    fts = table(target.fts, column("rowid"))
    name: Any = literal_column(target.fts)
    own_rowid: Any = literal_column(f"{target.model.__tablename__}.rowid")
    return _Match(
        name.op("MATCH")(sqlite_match(query)),
        -func.bm25(name),
        (fts, fts.c.rowid == own_rowid),
    )


async def _search(
    session: AsyncSession,
    target: _Target,
    seen: Any,
    narrowing: list[Any],
    query: SearchQuery,
    position: Position,
    limit: int,
) -> tuple[list[Any], Position | None]:
    """The rows of a page (rows of ``seen``, the reader's posts or comments, in rank order)
    and where the next one starts (module docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        # Plans made for the query's words: after five runs of a prepared statement PostgreSQL
        # may keep a generic plan, made without them, which cannot fold the tsquery and reads
        # far more (at 1,000,000 posts: a rare word 51 ms instead of 3, a phrase 100 instead of
        # 16). For this transaction only.
        await session.execute(select(func.set_config("plan_cache_mode", "force_custom_plan", True)))
    match = _match(session, target, query)
    matching = seen.where(match.condition, *narrowing)
    if match.join is not None:
        matching = matching.join(*match.join)
    scanning = seen.where(match.condition.is_(true()), *narrowing)
    find = _Finder(session, target, matching, scanning, match.relevance)
    ids: list[uuid.UUID] = []
    older_than = position_id(position.older_than)
    if older_than is None:
        window = await find.newest(SEARCH_WINDOW, below=position_id(position.top), inclusive=True)
        ranked = _ranked(window)
        end = position.offset + limit
        ids = ranked[position.offset : end]
        if end < len(ranked):
            return await _rows(session, target, seen, ids), Position(top=str(window[0].id), offset=end)
        if len(window) < SEARCH_WINDOW:
            return await _rows(session, target, seen, ids), None
        older_than = window[-1].id
    wanted = limit - len(ids)
    older = [row.id for row in await find.newest(wanted + 1, below=older_than, inclusive=False)]
    ids += older[:wanted]
    rows = await _rows(session, target, seen, ids)
    if len(older) <= wanted:
        return rows, None
    return rows, Position(older_than=str(older[wanted - 1] if wanted else older_than))


# How the newest matches are read on PostgreSQL (module docstring): the newest rows first, a
# chunk at a time, each chunk four times the one before; after each chunk, when the matches
# found so far are sparse, the GIN index's matches below it instead, all of them, newest first.
CHUNK = 10  # the first chunk, in windows' worth of rows
CHUNK_GROWTH = 4
SPARSE = 0.01  # at most this share of the rows read matching, the GIN index may be cheaper
# What a match read from the GIN index costs (a heap fetch and a recheck), in rows read along
# the primary key: measured at 1,000,000 posts, 2.0 µs against 0.37 µs.
BITMAP_ROW_COST = 5.0


@dataclass
class _Finder:
    """Reads the newest matches of ``matching`` (the reader's posts or comments that match):
    their id, creation time and relevance. ``scanning`` is the same with the match in a form no
    index serves."""

    session: AsyncSession
    target: _Target
    matching: Any
    scanning: Any
    relevance: Any

    @property
    def key(self) -> Any:
        return col(self.target.model.id)

    def _found(self, matching: Any) -> Any:
        """The columns of a match."""
        return matching.with_only_columns(
            self.key, col(self.target.model.created_at), self.relevance.label("relevance")
        )

    def _bound(self, column: Any, below: uuid.UUID | None, inclusive: bool) -> Any:
        if below is None:
            return true()
        return column <= below if inclusive else column < below

    async def newest(self, count: int, *, below: uuid.UUID | None, inclusive: bool) -> list[Any]:
        """The newest ``count`` matches whose id is below ``below`` (or equal, ``inclusive``),
        newest first."""
        if self.session.get_bind().dialect.name != "postgresql":
            statement = self._found(self.matching).where(self._bound(self.key, below, inclusive))
            return list((await self.session.execute(statement.order_by(self.key.desc()).limit(count))).all())
        found: list[Any] = []
        chunk, read = CHUNK * SEARCH_WINDOW, 0
        while True:
            oldest, size = await self._chunk_end(chunk, below, inclusive)
            found += await self._chunk(count - len(found), below, inclusive, oldest)
            if len(found) >= count:
                return found[:count]
            if oldest is None:  # the chunk held the oldest rows
                return found
            read += chunk
            below, inclusive = oldest, False
            if _bitmap_cheaper(len(found), read, size, count - len(found)):
                return found + await self._bitmap(count - len(found), oldest)
            chunk *= CHUNK_GROWTH

    async def _chunk_end(self, chunk: int, below: uuid.UUID | None, inclusive: bool) -> tuple[Any, float]:
        """The oldest id of the ``chunk`` newest rows below ``below`` (None when fewer rows are
        left), read from the primary key alone; and how many rows the table holds (the
        planner's count; -1 before the table was first analysed)."""
        rows = self.target.rows
        oldest = (
            select(rows.c.id)
            .where(self._bound(rows.c.id, below, inclusive))
            .order_by(rows.c.id.desc())
            .offset(chunk - 1)
            .limit(1)
            .scalar_subquery()
        )
        size = (
            select(column("reltuples"))
            .select_from(table("pg_class"))
            .where(column("oid") == cast(literal(rows.name), REGCLASS))
            .scalar_subquery()
        )
        row = (await self.session.execute(select(oldest.label("oldest"), size.label("size")))).one()
        return row.oldest, float(row.size if row.size is not None else -1)

    async def _chunk(
        self, count: int, below: uuid.UUID | None, inclusive: bool, oldest: uuid.UUID | None
    ) -> list[Any]:
        """The newest ``count`` matches whose id lies between ``oldest`` and ``below``, read
        along the primary key, newest first. The match is written so that the GIN index
        cannot serve it (``IS TRUE``), and the range is known: the plan is that scan, bounded
        by the chunk, whatever the words, with no estimate of how common they are to mislead
        it."""
        statement = self._found(self.scanning).where(self._bound(self.key, below, inclusive))
        if oldest is not None:
            statement = statement.where(self.key >= oldest)
        statement = statement.order_by(self.key.desc()).limit(count)
        return list((await self.session.execute(statement)).all())

    async def _bitmap(self, count: int, below: uuid.UUID) -> list[Any]:
        """The newest ``count`` matches below ``below``, from the GIN index: every match is
        read first (a materialised CTE, which no scan along the primary key can serve), then
        the newest are ranked."""
        matches = (
            self.matching.with_only_columns(self.key.label("id"))
            .where(self.key < below)
            .cte(f"{self.target.kind}_matching")
            .prefix_with("MATERIALIZED")
        )
        newest = select(matches.c.id).order_by(matches.c.id.desc()).limit(count)
        model = self.target.model
        statement = select(col(model.id), col(model.created_at), self.relevance.label("relevance")).where(
            col(model.id).in_(newest)
        )
        rows = (await self.session.execute(statement)).all()
        return sorted(rows, key=lambda row: row.id, reverse=True)


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


def _ranked(window: Sequence[Any]) -> list[uuid.UUID]:
    """The window's ids by score, the newer first on a tie; age counted from the window's newest
    match (module docstring)."""
    if not window:
        return []
    newest = max(row.created_at for row in window)
    scored = [
        (score(row.relevance or 0.0, (newest - row.created_at).total_seconds() / 86400), row.id)
        for row in window
    ]
    scored.sort(key=lambda pair: (pair[0], pair[1]), reverse=True)
    return [row_id for _, row_id in scored]


async def _rows(session: AsyncSession, target: _Target, seen: Any, ids: list[uuid.UUID]) -> list[Any]:
    """The rows of ``seen`` with these ids, in their order (one that is no longer seen is left
    out)."""
    if not ids:
        return []
    rows = (await session.execute(seen.where(col(target.model.id).in_(ids)))).all()
    by_id = {row[0].id: row for row in rows}
    return [by_id[row_id] for row_id in ids if row_id in by_id]
