"""Search's statements on PostgreSQL (``services.feed.search``), compiled once for each shape of
query and run on asyncpg directly (decision 0041).

Built through SQLAlchemy for every search, a search's four to six statements cost feed more
CPU than the database spent running them: at 100,000 posts, 3.7 of a rare word's 7.3 ms went to
putting the visibility rule together again, generating each statement's cache key and loading
ORM rows. The statements here are put together from the same expressions as every other read
(``timelines.visible_posts``, ``search.comments_seen``: the rule stays stated once), with every
value a named bound parameter: the reader (``READER``, ``CONTEXT``), the query's terms
(``kit.search.pg_terms``), its filters, and the bounds of each step. Compiled once for each
``kit.search.shape`` of query (how many terms in each clause, which filters) by
``kit.compiled``, each is then a text and a list of its parameters' names, and a search costs
a dictionary lookup and a list of arguments per statement.

They run on a connection of ``Database.raw``'s custom-plan pool: each is planned for its
values (as ``plan_cache_mode=force_custom_plan`` says), so that PostgreSQL folds the query's
``tsquery`` into a constant; a generic plan, made without the words, reads far more (at
1,000,000 posts, a rare word 51 ms instead of 3).

A post found is written as JSON by the database, by the home page's own document
(``home_sql.document``), beside its text and language for the excerpt.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Uuid, any_, bindparam, column, func, literal, select, table, true
from sqlalchemy.dialects.postgresql import REGCLASS
from sqlmodel import col

from domain.principal import Principal
from kit.compiled import Compiled, Made, compile_statement
from kit.search import SearchQuery, pg_tsquery, shape
from services.feed import home_sql
from services.feed.models import Post

# The names of the parameters every statement may take.
READER, CONTEXT = "reader", "context"
AUTHOR, GROUP, TAG, SINCE, UNTIL = "author", "group_id", "tag", "since", "until"
BELOW, OLDEST, COUNT, OFFSET, IDS, NOW = "below", "oldest", "count", "offset", "ids", "now"
# A bound that excludes nothing: every id is below the greatest and at least the least.
HIGHEST = uuid.UUID(int=(1 << 128) - 1)
LOWEST = uuid.UUID(int=0)

# The reader, as bound parameters: what the visibility rule is written with here.
BOUND_READER = Principal(
    subject="",
    persona_id=cast(Any, bindparam(READER, type_=Uuid())),
    context=cast(Any, bindparam(CONTEXT)),
    scopes=frozenset(),
    roles=frozenset(),
    token_id="",
    issued_at=0.0,
    expires_at=0.0,
)


@dataclass(frozen=True, slots=True)
class Statements:
    """A search's statements for one target and one shape of query (``search.Target``):

    - ``edge``: the oldest id of the ``OFFSET + 1`` newest rows at or below (``edge[True]``) or
      below (``edge[False]``) ``BELOW``, the table's size as the planner counts it, and the
      newest of those rows;
    - ``chunk``: the newest ``COUNT`` matches between ``OLDEST`` and ``BELOW``, along the
      primary key (``edge`` and ``chunk`` by whether ``BELOW`` is included);
    - ``bitmap``: the newest ``COUNT`` matches below ``BELOW`` and from ``OLDEST`` on, from
      the GIN index ANDed with the BRIN index of ids;
    - ``rest``: the newest ``COUNT`` matches below ``BELOW``, from the GIN index alone;
    - ``rows``: posts only, the JSON of each of ``IDS`` the reader still sees."""

    edge: Mapping[bool, Compiled]
    chunk: Mapping[bool, Compiled]
    bitmap: Compiled
    rest: Compiled
    rows: Compiled | None


def _bound(key: Any, inclusive: bool) -> Any:
    below = bindparam(BELOW, type_=Uuid())
    return key <= below if inclusive else key < below


def build(target: Any, seen: Any, narrowing: list[Any], query: SearchQuery) -> Statements:
    """The statements of ``target`` for the reader's rows ``seen`` and the filters'
    ``narrowing`` (both written with ``BOUND_READER`` and named parameters)."""
    model = target.model
    key, created = col(model.id), col(model.created_at)
    document = target.document
    tsquery = pg_tsquery(query, by_place=True)
    relevance = func.ts_rank_cd(document, tsquery, 1).label("relevance")
    matching = seen.where(document.op("@@")(tsquery), *narrowing)
    # The match written so that no index serves it: the scan along the primary key it leaves
    # is bounded by the chunk, whatever the words (``search._PostgresFinder``).
    scanning = seen.where(document.op("@@")(tsquery).is_(true()), *narrowing)
    rows = target.rows

    def edge(inclusive: bool) -> Compiled:
        oldest = (
            select(rows.c.id)
            .where(_bound(rows.c.id, inclusive))
            .order_by(rows.c.id.desc())
            .offset(bindparam(OFFSET))
            .limit(1)
            .scalar_subquery()
        )
        size = (
            select(column("reltuples"))
            .select_from(table("pg_class"))
            .where(column("oid") == literal(rows.name).cast(REGCLASS))
            .scalar_subquery()
        )
        newest = (
            select(rows.c.id).where(_bound(rows.c.id, inclusive)).order_by(rows.c.id.desc()).limit(1)
        ).scalar_subquery()
        return compile_statement(select(oldest.label("oldest"), size.label("size"), newest.label("newest")))

    def chunk(inclusive: bool) -> Compiled:
        statement = (
            scanning.with_only_columns(key, created, relevance)
            .where(_bound(key, inclusive), key >= bindparam(OLDEST, type_=Uuid()))
            .order_by(key.desc())
            .limit(bindparam(COUNT))
        )
        return compile_statement(statement)

    def from_index(*bounds: Any) -> Compiled:
        # Every match within ``bounds`` first (a materialised CTE, which no scan along the
        # primary key can serve), then the newest of them.
        matches = (
            matching.with_only_columns(key.label("id"))
            .where(*bounds)
            .cte(f"{target.kind}_matching")
            .prefix_with("MATERIALIZED")
        )
        newest = select(matches.c.id).order_by(matches.c.id.desc()).limit(bindparam(COUNT))
        return compile_statement(select(key, created, relevance).where(key.in_(newest)))

    return Statements(
        edge={True: edge(True), False: edge(False)},
        chunk={True: chunk(True), False: chunk(False)},
        # A range a few tens of thousands of rows long: PostgreSQL ANDs the GIN index's bitmap
        # with the blocks the BRIN index of ids gives for the range, and reads only those.
        bitmap=from_index(_bound(key, False), key >= bindparam(OLDEST, type_=Uuid())),
        # Every match below: the bound written so that no index of ids serves it, which would
        # only turn the GIN index's exact matches into whole blocks to check again (a rare
        # word at 1,000,000 posts: 5 ms instead of 1).
        rest=from_index(_bound(key, False).is_(true())),
        rows=_post_rows(seen) if target.kind == "posts" else None,
    )


def _post_rows(seen: Any) -> Compiled:
    """The JSON of each post of ``IDS`` that ``seen`` still holds, with its id, text and
    language: the home page's document (``home_sql.document``), the reader's reactions
    included."""
    still_seen = compile_statement(
        seen.with_only_columns(col(Post.id)).where(col(Post.id) == any_(bindparam(IDS)))
    )
    reader = f"${still_seen.names.index(READER) + 1}"
    now = f"${len(still_seen.names) + 1}"
    sql = f"""SELECT p.id, p.body, p.lang, {home_sql.document(reader, now)} AS doc
FROM post p LEFT JOIN LATERAL (
    SELECT a.handle, a.display_name FROM persona_replica a WHERE a.id = p.author_id LIMIT 1) a ON true
WHERE p.id IN ({still_seen.sql})"""
    return Compiled(sql, (*still_seen.names, NOW), still_seen.fixed)


# Statements for this many shapes of query at most, the oldest made dropped first.
MAX_SHAPES = 256
MADE: Made[Statements] = Made(MAX_SHAPES)


def statements(target: Any, query: SearchQuery, make: Callable[[], Statements]) -> Statements:
    """The statements of ``target`` for ``query``'s shape (``kit.search.shape``), made by
    ``make()`` the first time."""
    return MADE.get((target.kind, shape(query)), make)
