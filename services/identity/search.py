"""People search: the personas of the caller's context whose handle, display name, job title,
department or skills match a query in web-search syntax (kit.search, decision 0034), typos
included, so that "Margaret Smyth" finds Margret Smith.

**What matches.** The query's clauses must all match (a clause is an OR of terms); a term
matches a persona when its words are in the persona's text, stemmed in English or French or
as written (``kit.search``; a profile declares no language, so its text is stemmed in both,
which costs nothing for names and serves job titles and skills written in either), or, for a
single word of at least ``FUZZY_MIN_CHARS`` letters, when the persona's text has a word like
it: pg_trgm's *word similarity* of the word and the text is at least ``FUZZY_THRESHOLD``
(pg_trgm's own default for similarity). Shorter words and quoted phrases match only as
written or stemmed: the trigrams of a two-letter word say little, and quotes ask for exactly
those words. Exclusions (``-word``) exclude what contains them as written or stemmed. The
filters of the syntax (``author:`` ...) have no meaning for people and are ignored, so a
query written for every kind of search runs here too.

**Who.** Only what the directory lists (``personas.listed``): personas of the caller's own
context (a professional token never finds a personal persona, nor the reverse), active and not
held by moderation, and never a personal persona that is not discoverable. Nothing of a
persona's other face is in its text, so nothing found pairs the two (docs/boundary.md).

**Rank.** ``score = max(text rank, word_similarity(all the query's words, text))``, then the
handle; people have no recency (decision 0034). The text rank is PostgreSQL's
``ts_rank_cd(document, tsquery, 1)``, or on SQLite ``r / (1 + r)`` of ``r = -bm25``, which
puts FTS5's unbounded relevance on the same scale from 0 to 1. People are few, so a search
ranks every match, up to ``CANDIDATES`` (1,000) of them: the best 1,000 are ranked and paged,
the rest are not reached (a query that broad needs more words). A page's cursor is the
(score, handle) of its last item, under the scope of the query (``kit.search.cursor_scope``):
the next page recomputes the ranking and starts after that key, so a persona added or removed
meanwhile shifts nothing; one whose profile changed between two pages may move.

**PostgreSQL** computes everything in one statement over two generated columns and their GIN
indexes (``search_text``, the folded text, by its trigrams; ``search_document``, its
``tsvector``; migration d23de0000001), and returns the page's personas with their scores. It
is compiled once for each shape of query (``pg_shape``, ``kit.compiled``) and runs on asyncpg
directly, on connections that carry the threshold of pg_trgm's ``%>`` and the planner's costs
(``PG_SETTINGS``): one round trip, where building it through SQLAlchemy, setting those for a
transaction and loading the page's personas took four, and most of identity's CPU per search.
Among 10,000 personas: a few milliseconds for a name, about 15 for a word a tenth of them
have, under 200 for eight misspelled names OR'ed.

**SQLite** has no trigram similarity: this module computes pg_trgm's ``word_similarity`` in
Python with pg_trgm's formula (``word_similarity`` below), over candidates that FTS5 finds and
bounds: up to ``CANDIDATES`` matches of the whole query (``persona_search_fts``), and up to
``CANDIDATES`` personas sharing a trigram with a misspellable word (``persona_search_grams``,
the trigram tokenizer), best first by bm25. A misspelled persona beyond those has no chance
on SQLite; SQLite is the single-process deployment, for small directories (among 10,000
personas a search takes 40 to 170 ms, 350 for eight misspelled names OR'ed).
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BindParameter,
    ColumnClause,
    ColumnElement,
    Double,
    Integer,
    Text,
    Uuid,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    not_,
    or_,
    select,
    table,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit import search
from kit.compiled import Compiled, Made, compile_statement
from kit.db import Database, Plan
from kit.errors import BadRequest
from kit.pagination import decode_cursor
from kit.search import STEMMED, SearchQuery, Term, stem
from services.identity import personas
from services.identity.models import Persona

FUZZY_THRESHOLD = 0.3
FUZZY_MIN_CHARS = 4
CANDIDATES = 1000
PG_OPERATOR_COST = 0.05  # PostgreSQL's default is 0.0025 (pg_prepare)
KIND = "people"
HIGHLIGHT_WIDTH = 240


@dataclass(frozen=True)
class Hit:
    persona: Persona
    score: float
    highlight: str


@dataclass(frozen=True)
class Ranked:
    persona_id: uuid.UUID
    handle: str
    score: float


def cursor_key(hit: Hit) -> list[str]:
    """A page's cursor: its last item's score (exactly, as ``repr`` writes a float) and handle."""
    return [repr(hit.score), hit.persona.handle]


def scope(query: SearchQuery) -> str:
    return search.cursor_scope(KIND, query)


async def people(
    session: AsyncSession, database: Database, kind: str, q: str, *, cursor: str | None, limit: int
) -> tuple[SearchQuery, list[Hit]]:
    """The parsed query and up to ``limit + 1`` hits after ``cursor`` (the extra one says that
    another page exists). An empty query (only stop words, filters or exclusions) finds no one,
    without a statement."""
    query = search.parse(q)
    after = _after(query, cursor)
    if query.empty:
        return query, []
    if database.is_postgres:
        found = await _postgres(database, query, kind, after, limit + 1)
    else:
        found = await _sqlite_page(session, query, kind, after, limit + 1)
    return query, [Hit(persona, score, highlight(persona, query)) for persona, score in found]


async def _sqlite_page(
    session: AsyncSession, query: SearchQuery, kind: str, after: tuple[float, str] | None, rows: int
) -> list[tuple[Persona, float]]:
    ranked = await _sqlite(session, query, kind)
    page = [r for r in ranked if after is None or (-r.score, r.handle) > (-after[0], after[1])][:rows]
    found = {
        p.id: p
        for p in await session.scalars(
            select(Persona).where(col(Persona.id).in_([r.persona_id for r in page]))
        )
    }
    # a persona removed between the two statements is left out
    return [(found[r.persona_id], r.score) for r in page if r.persona_id in found]


def _after(query: SearchQuery, cursor: str | None) -> tuple[float, str] | None:
    key = decode_cursor(scope(query), cursor, arity=2)
    if key is None:
        return None
    score, handle = key
    try:
        value = float(score) if isinstance(score, str) and len(score) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and isinstance(handle, str) and len(handle) <= 30):
        raise BadRequest("The cursor is not valid.", slug="bad-cursor")
    return value, handle


def fuzzy(term: Term) -> bool:
    """Whether a term may also match a word like it: a single word, long enough for its
    trigrams to say something."""
    return not term.phrase and len(term.words[0]) >= FUZZY_MIN_CHARS


def _all_words(query: SearchQuery) -> str:
    return " ".join(w for term in query.terms() for w in term.words)


def _only(terms: Iterable[Term]) -> SearchQuery:
    """A query of one clause: any of ``terms``."""
    return SearchQuery(clauses=(tuple(terms),))


# PostgreSQL ------------------------------------------------------------------------------


# The generated columns of the persona table (migration d23de0000001), which the SQLModel
# mapping leaves out so that no read of a persona loads them.
PG_TEXT: ColumnClause[str] = literal_column("persona.search_text", Text)
PG_DOCUMENT: ColumnClause[Any] = literal_column("persona.search_document")


# The names of the statement's parameters besides the query's terms (``kit.search.pg_terms``).
FUZZY, WORDS, AFTER_SCORE, AFTER_HANDLE, ROWS = "fuzzy_", "words", "after_score", "after_handle", "rows"

# Settings of the connections people search runs on (``kit.db.Database.raw``). ``%>``
# compares with pg_trgm's threshold; and the planner is told what testing a row costs. pg_trgm
# declares its operators as cheap as an addition, when ``%>`` costs about 10 µs a row, and
# kit.search's tsquery names a lexeme once per language, which multiplies its estimate: left
# alone, the planner reads the whole table, or all of one context by its handle index, for any
# word a few percent of people have (10,000 personas: 110 ms for a word a tenth of them have,
# 520 ms for eight misspelled names OR'ed, against 25 and 180 ms by the GIN indexes).
# ``cpu_operator_cost`` at 20 times its default prices the operators nearer what they cost,
# and sequential scans are off: every clause of the statement has a condition a GIN index
# answers. Each statement is planned for its values, so that the query's ``tsquery`` is a
# constant to the planner.
PG_SETTINGS = {
    "pg_trgm.word_similarity_threshold": str(FUZZY_THRESHOLD),
    "cpu_operator_cost": str(PG_OPERATOR_COST),
    "enable_seqscan": "off",
}
PG_PLAN: Plan = "custom"


def pg_statement(query: SearchQuery, kind: str) -> Any:
    """A page of the ranked personas: (score, then every column of the persona), best first,
    after the cursor (``AFTER_SCORE``, ``AFTER_HANDLE``; both null on the first page), ``ROWS``
    of them at most, among the best ``CANDIDATES``. Every condition on the text is one the two
    GIN indexes answer. The query's values are parameters named by their place (``pg_values``),
    so that the statement serves every query of its ``pg_shape``."""
    text, document = PG_TEXT, PG_DOCUMENT
    conditions = [*personas.listed(kind)]
    place = 0
    for clause in query.clauses:
        alternatives = []
        for term in clause:
            alternatives.append(document.bool_op("@@")(search.pg_term(term, place)))
            if fuzzy(term):
                alternatives.append(text.bool_op("%>")(bindparam(f"{FUZZY}{place}", type_=Text())))
            place += 1
        conditions.append(or_(*alternatives))
    if query.excluded:
        excluded = [search.pg_term(term, place + n) for n, term in enumerate(query.excluded)]
        conditions.append(not_(document.bool_op("@@")(functools.reduce(func.tsquery_or, excluded))))
    positive = search.pg_tsquery(SearchQuery(clauses=query.clauses), by_place=True)
    score = func.greatest(
        func.ts_rank_cd(document, positive, 1),
        func.word_similarity(bindparam(WORDS, type_=Text()), text),
    ).label("score")
    ranked = (
        select(col(Persona.id), col(Persona.handle), score)
        .where(*conditions)
        .order_by(score.desc(), Persona.handle)
        .limit(CANDIDATES)
        .cte("ranked")
    )
    after_score: BindParameter[float] = bindparam(AFTER_SCORE, type_=Double())
    after = or_(
        after_score.is_(None),
        ranked.c.score < after_score,
        and_(ranked.c.score == after_score, ranked.c.handle > bindparam(AFTER_HANDLE, type_=Text())),
    )
    return (
        select(ranked.c.score, *Persona.__table__.columns)  # type: ignore[attr-defined]
        .join(Persona, col(Persona.id) == ranked.c.id)
        .where(after)
        .order_by(ranked.c.score.desc(), ranked.c.handle)
        .limit(bindparam(ROWS, type_=Integer()))
    )


def pg_shape(query: SearchQuery, kind: str) -> tuple[Any, ...]:
    """What ``pg_statement`` depends on but the query's values."""
    return (kind, search.shape(query), tuple(fuzzy(term) for term in query.terms()))


def pg_values(query: SearchQuery, after: tuple[float, str] | None, rows: int) -> dict[str, Any]:
    """The values of ``pg_statement(query, ...)``'s parameters."""
    values = search.pg_terms(query)
    values.update({f"{FUZZY}{n}": term.words[0] for n, term in enumerate(query.terms()) if fuzzy(term)})
    values[WORDS] = _all_words(query)
    values[AFTER_SCORE], values[AFTER_HANDLE] = after if after is not None else (None, None)
    values[ROWS] = rows
    return values


# People search's statements, compiled once for each shape of query (kit.compiled).
PG_MADE: Made[Compiled] = Made(256)
# The persona's columns that asyncpg reads as JSON text.
_JSON_COLUMNS = tuple(c.name for c in Persona.__table__.columns if isinstance(c.type, JSON))  # type: ignore[attr-defined]


async def _postgres(
    database: Database, query: SearchQuery, kind: str, after: tuple[float, str] | None, rows: int
) -> list[tuple[Persona, float]]:
    compiled = PG_MADE.get(pg_shape(query, kind), lambda: compile_statement(pg_statement(query, kind)))
    async with database.raw(PG_PLAN, PG_SETTINGS) as connection:
        found = await connection.fetch(compiled.sql, *compiled.args(pg_values(query, after, rows)))
    return [(_persona(row), float(row["score"])) for row in found]


def _persona(row: Any) -> Persona:
    values = dict(row.items())
    del values["score"]
    for name in _JSON_COLUMNS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return Persona(**values)


# SQLite ----------------------------------------------------------------------------------

_ROWS = table("persona_search", column("id"), column("persona_id", Uuid), column("words"))
_FTS = table("persona_search_fts", column("rowid"))
_GRAMS = table("persona_search_grams", column("rowid"), column("rank"))


def _fts_match(expression: str) -> ColumnElement[bool]:
    return literal_column("persona_search_fts").bool_op("MATCH")(expression)


def grams_match(query: SearchQuery) -> str | None:
    """An FTS5 ``MATCH`` of the trigram index: any of pg_trgm's trigrams of a word that may be
    misspelled (the index pads words as pg_trgm does). Words are runs of letters and digits
    (``kit.search.words``), so a trigram carries no FTS5 syntax."""
    grams = {g for t in query.terms() if fuzzy(t) for g in trigrams(t.words[0])}
    return " OR ".join(f'"{g}"' for g in sorted(grams)) or None


async def _sqlite(session: AsyncSession, query: SearchQuery, kind: str) -> list[Ranked]:
    candidates: dict[uuid.UUID, tuple[str, float | None, str]] = {}
    relevance = (-func.bm25(literal_column("persona_search_fts"))).label("relevance")
    exact = (
        select(col(Persona.id), col(Persona.handle), _ROWS.c.words, relevance)
        .select_from(_FTS)
        .join(_ROWS, _ROWS.c.id == _FTS.c.rowid)
        .join(Persona, col(Persona.id) == _ROWS.c.persona_id)
        .where(_fts_match(search.sqlite_match(query)), *personas.listed(kind))
        .order_by(relevance.desc())
        .limit(CANDIDATES)
    )
    for row in await session.execute(exact):
        candidates[row.id] = (row.handle, float(row.relevance), row.words)
    grams = grams_match(query)
    if grams is not None:
        near = (
            select(col(Persona.id), col(Persona.handle), _ROWS.c.words)
            .select_from(_GRAMS)
            .join(_ROWS, _ROWS.c.id == _GRAMS.c.rowid)
            .join(Persona, col(Persona.id) == _ROWS.c.persona_id)
            .where(literal_column("persona_search_grams").bool_op("MATCH")(grams), *personas.listed(kind))
            .order_by(_GRAMS.c.rank)
            .limit(CANDIDATES)
        )
        if query.excluded:
            excluded = select(_FTS.c.rowid).where(_fts_match(search.sqlite_match(_only(query.excluded))))
            near = near.where(_ROWS.c.id.not_in(excluded))
        for row in await session.execute(near):
            if row.id not in candidates and matches(query, row.words.split()):
                candidates[row.id] = (row.handle, None, row.words)
    everything = _all_words(query).split()
    wanted = frozenset(trigrams(" ".join(everything)))

    def similarity(words: Sequence[str]) -> float:
        # the query's words in a row in the text: an extent with exactly the query's trigrams
        if _contains(words, everything):
            return 1.0
        return _similarity(wanted, trigrams(" ".join(words)))

    ranked = [
        Ranked(pid, handle, max(0.0 if r is None else r / (1 + r), similarity(text.split())))
        for pid, (handle, r, text) in candidates.items()
    ]
    ranked.sort(key=lambda r: (-r.score, r.handle))
    return ranked[:CANDIDATES]


def matches(query: SearchQuery, words: Sequence[str]) -> bool:
    """Whether a persona whose folded words are ``words`` matches every clause of ``query``,
    as the PostgreSQL statement decides: each term as written, stemmed, or (``fuzzy``) by word
    similarity. (Exclusions are left to the candidates' statement.)"""
    stems = {lang: [stem(w, lang) for w in words] for lang in STEMMED}
    sequence: list[str] = []

    def term_matches(term: Term) -> bool:
        if _contains(words, term.words):
            return True
        if any(_contains(stems[lang], [stem(w, lang) for w in term.words]) for lang in STEMMED):
            return True
        if not fuzzy(term):
            return False
        if not sequence:
            sequence.extend(trigrams(" ".join(words)))
        return _similarity(frozenset(trigrams(term.words[0])), sequence) >= FUZZY_THRESHOLD

    return all(any(term_matches(t) for t in clause) for clause in query.clauses)


def _contains(words: Sequence[str], phrase: Sequence[str]) -> bool:
    if len(phrase) == 1:
        return phrase[0] in words
    n = len(phrase)
    return any(list(words[i : i + n]) == list(phrase) for i in range(len(words) - n + 1))


# pg_trgm's similarity, in Python -----------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")


def trigrams(text: str) -> list[str]:
    """pg_trgm's trigrams of ``text``, in order, repeats included: each word (a run of letters
    and digits, in lower case) padded with two spaces before and one after, cut in threes."""
    found: list[str] = []
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        found += [padded[i : i + 3] for i in range(len(padded) - 2)]
    return found


def _float4(value: float) -> float:
    """pg_trgm computes in single precision; so does this, for the same thresholds."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


def word_similarity(query: str, text: str) -> float:
    """pg_trgm's ``word_similarity(query, text)``: the greatest similarity between the set of
    the trigrams of ``query`` and a continuous extent of the trigrams of ``text``, where the
    similarity of two sets is ``shared / (|a| + |b| - shared)``. This is the loop of pg_trgm's
    ``iterate_word_similarity`` (trgm_op.c), step for step: the extent ends at each trigram of
    ``text`` that the query has, and its start moves right while that raises the similarity.
    tests/identity/test_search.py compares it with PostgreSQL's over thousands of pairs."""
    return _similarity(frozenset(trigrams(query)), trigrams(text))


def _similarity(wanted: frozenset[str], sequence: Sequence[str]) -> float:
    """``word_similarity`` of a query whose trigrams are ``wanted`` and a text whose trigrams,
    in order, are ``sequence``."""
    if not wanted:
        return 0.0
    size = len(wanted)
    last: dict[str, int] = {}  # the last position of each trigram within the extent
    extent = shared = 0  # distinct trigrams of the extent, and how many the query has
    lower = -1
    best = 0.0
    for i, gram in enumerate(sequence):
        present = gram in wanted
        if lower >= 0 or present:
            if gram not in last:
                extent += 1
                shared += present
            last[gram] = i
        if not present:
            continue
        if lower == -1:
            lower, extent = i, 1
        current = _float4(shared / (size + extent - shared))
        trial_shared, trial_extent, previous_lower = shared, extent, lower
        for start in range(lower, i + 1):
            trial = _float4(trial_shared / (size + trial_extent - trial_shared))
            if trial > current:
                current, extent, lower, shared = trial, trial_extent, start, trial_shared
            if last.get(sequence[start]) == start:
                trial_extent -= 1
                trial_shared -= sequence[start] in wanted
        best = max(best, current)
        for start in range(previous_lower, lower):
            if last.get(sequence[start]) == start:
                del last[sequence[start]]
    return best


# Highlights ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _alike(word: str, other: str) -> bool:
    """Whether the word ``other`` is like ``word`` as ``%>`` decides. Remembered: the same names
    come back in search after search, and each comparison is a loop in Python."""
    return _float4(word_similarity(word, other)) >= FUZZY_THRESHOLD


def profile_text(persona: Persona) -> str:
    """The searchable fields as one line, for the snippet."""
    parts = [persona.display_name, f"@{persona.handle}", persona.job_title, persona.department]
    parts.append(", ".join(persona.skills or []))
    return " · ".join(p for p in parts if p)


def highlight(persona: Persona, query: SearchQuery) -> str:
    """The profile's line with the query's words marked, the words it matched by similarity
    included (a misspelled "Smyth" marks "Smith")."""
    text = profile_text(persona)
    fuzzy_words = [t.words[0] for t in query.terms() if fuzzy(t)]
    near = {w for w in search.words(text) if any(_alike(f, w) for f in fuzzy_words)}
    shown = SearchQuery(clauses=(*query.clauses, *((Term((w,)),) for w in sorted(near))))
    return search.highlight(text, shown, None, width=HIGHLIGHT_WIDTH)
