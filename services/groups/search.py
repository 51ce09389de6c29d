"""Searching groups (decision 0034, docs/search.md): their language, the index, and the one
search the directory's visibility allows.

**What is indexed.** The name (with the handle), the purpose, the tags and the charter (its
objective, audience and success indicators, with the description), weighted in that order: a
word of the name counts most, one of the charter least. The group's ``lang`` chooses the
stemming; a group whose owners declared none gets the language ``kit.search.detect`` reads in
its purpose and charter. On PostgreSQL the index is the generated ``search_vector`` column
(``setweight`` A, B, C, D over ``search_document``) and its GIN index; on SQLite the FTS5 table
``group_search``, one row per group, a pair of columns (stems, words) per field, which
triggers keep; bm25 weighs the fields. Both follow a change or a deletion in the transaction
that makes it (migration d23ce0000001).

**Who finds what.** Exactly the directory's rule (``directory.find_groups``): groups of the
caller's context only; a secret group only to its members (and administrators); none under
moderation, but a hidden one to its owners; archived groups only when asked for, as the
directory lists them. The rule is in the statement, so nothing the caller may not see is read,
ranked or counted.

**Ranking.** ``kit.search.score``: relevance (PostgreSQL's ``ts_rank_cd``, SQLite's ``bm25``)
halved for every 30 days of the group's age. Age is counted from the creation: a group's last
activity is its members' business (group health is for members), so it does not move a group
up in the results of someone who may not read it; among equal scores the newer comes first.
Groups are few, so a search ranks the newest ``CANDIDATES`` (1,000) matches, where posts rank a
window of 200; past them, pages continue with the older matches in id order, as every search's
do. The cursor is ``kit.search``'s (the newest candidate's id and an offset, or the last id
shown), so the pages of one search are cut from one ranking while groups are created.

**Typos** (PostgreSQL): a name whose words are close to the query's (pg_trgm's
``strict_word_similarity`` over the folded name, with its trigram index) is found too, after the
groups that match the text itself. The query's exclusions and filters still apply. SQLite
finds the words as written and stemmed only.

**Filters.** ``tag:`` (or ``#tag``) keeps the groups with that tag; ``since:`` and ``until:``
the groups created in those days. ``author:`` and ``group:`` have no meaning for a group and
are ignored (decision 0034), so a query written for every kind of search runs here too."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    column,
    exists,
    func,
    literal_column,
    or_,
    table,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.principal import Principal
from kit import search
from kit.errors import BadRequest
from kit.pagination import decode_cursor
from kit.search import SearchQuery
from kit.timeutil import utcnow
from services.groups.access import moderation_allows
from services.groups.models import Group, Membership

CANDIDATES = 1000
"""How many of the newest matches are ranked; older matches follow them in id order."""
FIELDS = ("name", "purpose", "tags", "charter")
"""The indexed fields, from the one that weighs most."""
SQLITE_WEIGHTS = {"name": 10.0, "purpose": 4.0, "tags": 2.0, "charter": 1.0}
"""bm25's weight of each field's columns: the proportions of PostgreSQL's ``ts_rank_cd``
weights for A, B, C and D (1.0, 0.4, 0.2, 0.1)."""
TYPO_MIN_CHARS = 4
"""A query shorter than this (its words' letters) is not looked for among similar names: a
few letters are similar to too many."""
TYPO_RELEVANCE = 0.1
"""A name found only by its likeness counts as a word of the charter, times the likeness."""
TYPO_LIKENESS = 0.4
"""pg_trgm's ``strict_word_similarity`` of the query's words to some of the name's words from
which a name is found: a letter missing, added or wrong, or two swapped, in a word of six
letters or more ("budjet", "planing", "migartion" find "Budget", "Planning", "Migration"),
where ``word_similarity`` would find "steam" for "team" and "loud" for "cloud"."""

SQLITE_TABLE = "group_search"
SQLITE_COLUMNS = tuple(f"{name}_{part}" for name in FIELDS for part in ("stems", "words"))
"""After ``group_id`` (not indexed): the stems and the words of each field."""

# The generated column is the database's, not the model's: the same model serves SQLite.
_vector = literal_column('"group".search_vector', TSVECTOR)
_fts = table(SQLITE_TABLE, column("group_id"))


# Languages -------------------------------------------------------------------------------


def text_of(purpose: str, objective: str | None, audience: str | None, indicators: Sequence[str]) -> str:
    """The text whose language is the group's: the purpose and the charter."""
    return "\n".join([purpose, objective or "", audience or "", *indicators])


def group_language(declared: str | None, text: str) -> str | None:
    """The declared tag (checked by ``kit.search.language``: 422 ``invalid-language``), else
    the language detected in ``text``, else None."""
    return search.language(declared) or search.detect(text)


def redetected(current: str | None, text: str) -> str | None:
    """The language after the owners changed the text without declaring one: what detection
    now reads if it is sure and it stems differently from the current one (``en-GB`` stays
    ``en-GB`` for an English text), else the current one."""
    found = search.detect(text)
    if found is not None and search.config(found) != search.config(current):
        return found
    return current


def group_text(group: Group) -> str:
    return text_of(group.purpose, group.objective, group.audience, group.success_indicators)


# Searching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    group: Group
    role: str | None
    highlight: str


@dataclass(frozen=True)
class Results:
    found: list[Found]
    next: search.Position | None


async def search_groups(
    session: AsyncSession,
    caller: Principal,
    query: SearchQuery,
    *,
    archived: bool,
    position: search.Position,
    limit: int,
) -> Results:
    """One page of the groups ``query`` finds for ``caller``, from ``position``: the newest
    ``CANDIDATES`` matches ranked, then the older ones in id order."""
    if query.empty:
        return Results([], None)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and typo_text(query) is not None:
        await session.execute(
            select(func.set_config("pg_trgm.strict_word_similarity_threshold", str(TYPO_LIKENESS), True))
        )
    match = Match(caller, query, archived=archived, postgres=postgres)
    if position.older_than is not None:
        older = await match.older(session, search.position_id(position.older_than), limit + 1)
        following = search.Position(older_than=str(older[limit - 1][0].id)) if len(older) > limit else None
        return _results(query, older[:limit], following)
    top = search.position_id(position.top)
    candidates = await match.candidates(session, top)
    now = utcnow()
    ranked = sorted(candidates, key=lambda c: (_score(c, now), c.id), reverse=True)
    chosen = [c.id for c in ranked[position.offset : position.offset + limit + 1]]
    rows = await match.rows(session, chosen[:limit])
    if len(chosen) > limit:
        following = search.Position(top=str(top or candidates[0].id), offset=position.offset + limit)
        return _results(query, rows, following)
    if len(candidates) < CANDIDATES:
        return _results(query, rows, None)
    # Every candidate is shown and there may be more: older matches follow, in id order.
    oldest = candidates[-1].id
    room = limit - len(rows)
    older = await match.older(session, oldest, room + 1)
    if len(older) <= room:
        return _results(query, [*rows, *older], None)
    last = older[room - 1][0].id if room else oldest
    return _results(query, [*rows, *older[:room]], search.Position(older_than=str(last)))


def decode_position(scope: str, cursor: str | None) -> search.Position:
    """``kit.search.decode_position`` for a ranking of ``CANDIDATES`` rather than a window of
    ``kit.search.SEARCH_WINDOW``: the same cursor, with offsets up to ``CANDIDATES``."""
    key = decode_cursor(scope, cursor, arity=3)
    if key is None:
        return search.Position()
    top, offset, older_than = key
    if not (isinstance(top, str) and isinstance(offset, int) and isinstance(older_than, str)):
        raise BadRequest("The cursor is not valid.", slug="bad-cursor")
    if not 0 <= offset <= CANDIDATES:
        raise BadRequest("The cursor is not valid.", slug="bad-cursor")
    position = search.Position(top or None, offset, older_than or None)
    for bound in (position.top, position.older_than):
        search.position_id(bound)  # 400 unless an id
    return position


class Match:
    """The statements of one search: the visible groups the query matches (the directory's
    rule, ``directory.find_groups``, and the index's match), read three ways."""

    def __init__(self, caller: Principal, query: SearchQuery, *, archived: bool, postgres: bool) -> None:
        self.my_role = (
            select(Membership.role)
            .where(col(Membership.group_id) == Group.id, col(Membership.persona_id) == caller.persona_id)
            .scalar_subquery()
        )
        conditions = [col(Group.context) == caller.context, moderation_allows(self.my_role)]
        if not caller.has_role("admin"):
            conditions.append(or_(col(Group.visibility) != "secret", self.my_role.is_not(None)))
        conditions.append(
            col(Group.archived_at).is_not(None) if archived else col(Group.archived_at).is_(None)
        )
        conditions += _filters(query.filters, postgres=postgres)
        if postgres:
            found, self.relevance = _pg_match(query)
            conditions.append(found)
        else:
            self.relevance = -_bm25()
            conditions.append(column(SQLITE_TABLE).op("MATCH", is_comparison=True)(sqlite_match(query)))
        self.conditions = conditions
        self.postgres = postgres

    def _from(self, statement: Any) -> Any:
        if not self.postgres:
            statement = statement.select_from(_fts).join(Group, col(Group.id) == _fts.c.group_id)
        return statement.where(*self.conditions)

    def candidates_statement(self, top: uuid.UUID | None) -> Any:
        """The newest ``CANDIDATES`` matches up to ``top``: id, creation time, relevance."""
        columns = (col(Group.id), col(Group.created_at), self.relevance.label("relevance"))
        statement = self._from(select(*columns))
        if top is not None:
            statement = statement.where(col(Group.id) <= top)
        return statement.order_by(col(Group.id).desc()).limit(CANDIDATES)

    async def candidates(self, session: AsyncSession, top: uuid.UUID | None) -> Sequence[Any]:
        rows: Sequence[Any] = (await session.execute(self.candidates_statement(top))).all()
        return rows

    async def rows(self, session: AsyncSession, ids: list[uuid.UUID]) -> list[Any]:
        """The groups of ``ids`` with the caller's role, in that order (the rule applies again:
        a group made secret meanwhile is left out)."""
        if not ids:
            return []
        statement = self._from(select(Group, self.my_role.label("my_role"))).where(col(Group.id).in_(ids))
        found = {row[0].id: row for row in (await session.execute(statement)).all()}
        return [found[i] for i in ids if i in found]

    def older_statement(self, before: Any, count: int) -> Any:
        """Matches older than ``before``, newest first, with the caller's role."""
        statement = self._from(select(Group, self.my_role.label("my_role")))
        return statement.where(col(Group.id) < before).order_by(col(Group.id).desc()).limit(count)

    async def older(self, session: AsyncSession, before: Any, count: int) -> Sequence[Any]:
        rows: Sequence[Any] = (await session.execute(self.older_statement(before, count))).all()
        return rows


def _results(query: SearchQuery, rows: Sequence[Any], next_position: search.Position | None) -> Results:
    return Results([Found(r[0], r[1], highlight(r[0], query)) for r in rows], next_position)


def _score(candidate: Any, now: datetime) -> float:
    """``kit.search.score`` of a candidate, its age counted from its creation."""
    return search.score(candidate.relevance, (now - candidate.created_at).total_seconds() / 86400)


def highlight(group: Group, query: SearchQuery) -> str:
    """The snippet of the first field, in the order of their weights, where the query matched;
    the purpose's opening when none did (a match by stem in another column, or by likeness)."""
    for text in field_texts(group):
        snippet = search.highlight(text, query, group.lang)
        if search.MARK_OPEN in snippet:
            return snippet
    return search.highlight(group.purpose, query, group.lang)


def field_texts(group: Group) -> tuple[str, str, str, str]:
    """Each indexed field's text as the answer shows it (``FIELDS``' order): the index reads
    the handle with the name, but a snippet of the name alone says more."""
    charter = [
        group.objective or "",
        group.audience or "",
        *group.success_indicators,
        group.description or "",
    ]
    return (
        group.name,
        group.purpose,
        " ".join(group.tags),
        "\n".join(t for t in charter if t),
    )


def _filters(filters: search.Filters, *, postgres: bool) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.tag is not None:
        conditions.append(_has_tag(filters.tag, postgres=postgres))
    if filters.since is not None:
        conditions.append(col(Group.created_at) >= datetime.combine(filters.since, time(), UTC))
    if filters.until is not None:
        end = datetime.combine(filters.until, time(), UTC) + timedelta(days=1)
        conditions.append(col(Group.created_at) < end)
    return conditions


def _has_tag(tag: str, *, postgres: bool) -> ColumnElement[bool]:
    """The group has ``tag`` (tags are kept in lower case, as the query's filter is written).
    On PostgreSQL the tag's words are also looked for in the index, so that the index, not
    the tag lists, narrows the rows; SQLite's match has them already (``sqlite_match``)."""
    if postgres:
        has = cast(col(Group.tags), JSONB).contains([tag])
        tag_words = " ".join(search.words(tag))
        if tag_words:
            in_index = func.plainto_tsquery(literal_column("'search_simple'::regconfig"), tag_words)
            has = and_(_vector.op("@@", is_comparison=True)(in_index), has)
        return has
    listed = func.json_each(col(Group.tags)).table_valued("value")
    return exists().where(listed.c.value == tag)


# PostgreSQL ------------------------------------------------------------------------------


def _pg_match(query: SearchQuery) -> tuple[ColumnElement[bool], ColumnElement[float]]:
    """The condition (the text, or a name like the query's words) and the relevance."""
    tsquery = search.pg_tsquery(query)
    text_match = _vector.op("@@", is_comparison=True)(tsquery)
    rank = func.ts_rank_cd(_vector, tsquery, 1)
    likeness = typo_text(query)
    if likeness is None:
        return text_match, cast(rank, Float)
    name = func.group_search_fold(col(Group.name))  # immutable unaccent: the trigram index's
    like_name: ColumnElement[bool] = name.op("%>>", is_comparison=True)(likeness)
    if query.excluded:
        unwanted = search.pg_tsquery(SearchQuery(clauses=(query.excluded,)))
        like_name = and_(like_name, ~_vector.op("@@", is_comparison=True)(unwanted))
    relevance = case((text_match, rank), else_=TYPO_RELEVANCE * func.strict_word_similarity(likeness, name))
    return or_(text_match, like_name), cast(relevance, Float)


def typo_text(query: SearchQuery) -> str | None:
    """The words a name may resemble: the query's, when they are all single words (a phrase
    is meant as written) and long enough to resemble anything."""
    terms = query.terms()
    if any(term.phrase for term in terms):
        return None
    text = " ".join(w for term in terms for w in term.words)
    return text if len(text.replace(" ", "")) >= TYPO_MIN_CHARS else None


# SQLite ----------------------------------------------------------------------------------


def sqlite_match(query: SearchQuery) -> str:
    """``kit.search.sqlite_match``'s expression over this table's columns: its ``stems : "…"``
    and ``words : "…"`` each apply to that part of every field."""
    columns = {part: "{" + " ".join(f"{name}_{part}" for name in FIELDS) + "}" for part in ("stems", "words")}
    expression = search.sqlite_match(query, stems=columns["stems"], words=columns["words"])
    tag_words = search.words(query.filters.tag or "")
    if tag_words:
        expression = f'({expression}) AND tags_words : "{" ".join(tag_words)}"'
    return expression


def _bm25() -> ColumnElement[float]:
    weights = [0.0, *(SQLITE_WEIGHTS[name.rsplit("_", 1)[0]] for name in SQLITE_COLUMNS)]
    return func.bm25(column(SQLITE_TABLE), *(literal_column(repr(w)) for w in weights), type_=Float)
