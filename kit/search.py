"""Full-text search's one set of rules (docs/search.md, decision 0034): the query syntax and its
limits, how text is folded and stemmed, the languages, the snippet, the ranking formula, the
window cursor, and the SQL each database runs. Each service searches its own tables with these;
no service writes a rule of its own.

- **Syntax** (``parse``): words (all must match), ``"an exact phrase"``, ``OR`` between two
  items, ``-word`` or ``-"a phrase"`` to exclude, and the filters ``author:``, ``group:``,
  ``tag:`` (or ``#tag``), ``since:``, ``until:``. Stop words (English and French) are dropped
  outside phrases; a query left with nothing to find is *empty* and answers an empty page.
- **Folding** (``fold``): lower case, accents removed, so "reunion" finds "réunion" and back.
- **Languages**: a text is indexed with its language's stemming (``STEMMED``: English and
  French) *and* literally, so a query finds stemmed forms in either language and an unknown
  word still matches as written.
- **PostgreSQL**: a generated ``tsvector`` column (``search_document``) with a GIN index;
  the text search configurations ``search_en``, ``search_fr`` and ``search_simple`` unaccent
  before stemming. **SQLite**: an FTS5 table (``stems``, ``words``) kept by triggers that call
  ``search_stems`` and ``search_words``, which ``register_sqlite`` defines on every connection.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import snowballstemmer  # type: ignore[import-untyped]
from fastapi import Query
from sqlalchemy import Boolean, Text, bindparam, func
from sqlalchemy.sql.elements import ColumnElement

from kit import stopwords
from kit.errors import Unprocessable
from kit.pagination import decode_cursor, encode_cursor

MAX_QUERY_CHARS = 256
MAX_TERMS = 16
MAX_WORD_CHARS = 64
MAX_LANG_CHARS = 35
STEMMED = ("en", "fr")
SEARCH_WINDOW = 200
RECENCY_DAYS = 30
MARK_OPEN, MARK_CLOSE = "<mark>", "</mark>"
ELLIPSIS = "…"
# The names of a term's parameters in ``pg_tsquery(..., by_place=True)``, with its place.
PG_TERM, PG_PHRASE = "search_term_", "search_phrase_"

_SNOWBALL = {"en": "english", "fr": "french"}
# Letters the Unicode decomposition leaves whole, spelled as PostgreSQL's unaccent spells them.
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l", "ı": "i"})  # noqa: RUF001
# A word: a run of letters and digits (what FTS5's unicode61 tokenizer and PostgreSQL's parser
# keep as one token, near enough for highlighting).
_WORD = re.compile(r"[^\W_]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The query's tokens: a quoted phrase (to the end when the quote is not closed), or a run of
# anything but spaces and quotes.
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+?)(?=\s|"|$)')
_FILTERS = ("author", "group", "tag", "since", "until", "has")
_LANG = re.compile(
    r"^(?P<language>[A-Za-z]{2,3})(?:-(?P<script>[A-Za-z]{4}))?(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$"
)


def fold(text: str) -> str:
    """Lower case without accents: the form both the index and the query compare."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


_STOP = frozenset(w for ws in (stopwords.ENGLISH, stopwords.FRENCH) for w in words(" ".join(ws)))
_ONLY_ENGLISH = frozenset(words(" ".join(stopwords.ENGLISH))) - frozenset(words(" ".join(stopwords.FRENCH)))
_ONLY_FRENCH = frozenset(words(" ".join(stopwords.FRENCH))) - frozenset(words(" ".join(stopwords.ENGLISH)))


@lru_cache(maxsize=2)
def _stemmer(lang: str) -> Any:
    return snowballstemmer.stemmer(_SNOWBALL[lang])


@lru_cache(maxsize=65536)
def stem(word: str, lang: str) -> str:
    """The Snowball stem of a folded word in ``lang`` (``en``, ``fr``), else the word."""
    return str(_stemmer(lang).stemWord(word)) if lang in _SNOWBALL else word


# Languages -------------------------------------------------------------------------------


def language(tag: str | None) -> str | None:
    """A BCP 47 language tag, checked and written in its usual case (``fr-CA``, ``zh-Hant``)."""
    if tag is None:
        return None
    match = _LANG.match(tag) if len(tag) <= MAX_LANG_CHARS else None
    if match is None:
        raise Unprocessable(
            "`lang` must be a BCP 47 language tag such as `en`, `fr` or `fr-CA`.", slug="invalid-language"
        )
    parts = tag.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) in (2, 3) and (part.isalpha() or part.isdigit()):
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def config(lang: str | None) -> str:
    """The stemming a text in ``lang`` gets: ``en``, ``fr``, or ``simple`` (literal words)."""
    primary = (lang or "").split("-", 1)[0].lower()
    return primary if primary in STEMMED else "simple"


def detect(text: str) -> str | None:
    """English or French, when the text's stop words say so clearly: at least two stop words of
    one language and none or less than a third as many of the other. Stop words are the
    surest sign of a language in short texts, and the lists are already here (decision 0034
    records why no detector library)."""
    english = french = 0
    for word in words(text[:2000]):
        english += word in _ONLY_ENGLISH
        french += word in _ONLY_FRENCH
    if english >= 2 and english >= 3 * french:
        return "en"
    if french >= 2 and french >= 3 * english:
        return "fr"
    return None


# Queries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One thing to find: a word, or a phrase (its words in order)."""

    words: tuple[str, ...]

    @property
    def phrase(self) -> bool:
        return len(self.words) > 1


@dataclass(frozen=True)
class Filters:
    author: str | None = None
    group: str | None = None
    tag: str | None = None
    since: date | None = None
    until: date | None = None


@dataclass(frozen=True)
class SearchQuery:
    clauses: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()
    filters: Filters = field(default_factory=Filters)

    @property
    def empty(self) -> bool:
        """Nothing to find: only stop words, operators or exclusions."""
        return not self.clauses

    def terms(self) -> list[Term]:
        return [term for clause in self.clauses for term in clause]

    def digest(self) -> str:
        """A short digest of what the query finds, so that a cursor of another query is
        refused rather than misread."""
        raw = repr((self.clauses, self.excluded, self.filters)).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


def parse(q: str) -> SearchQuery:
    """The query ``q`` in web-search syntax, or 422 for what cannot be a query."""
    if len(q) > MAX_QUERY_CHARS:
        raise Unprocessable(
            "A search is at most {limit} characters.",
            params={"limit": MAX_QUERY_CHARS},
            slug="query-too-long",
        )
    if _CONTROL.search(q):
        raise Unprocessable("A search cannot contain control characters.", slug="invalid-query")
    items: list[tuple[bool, Term] | str] = []  # (excluded, term), or "OR"
    filters: dict[str, Any] = {}
    count = 0
    for match in _TOKEN.finditer(q):
        minus, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is None:
            found = tuple(words(quoted or ""))
            if found:
                items.append((bool(minus), Term(found)))
                count += 1
            continue
        if bare == "OR":
            items.append("OR")
            continue
        key, colon, value = bare.partition(":")
        if colon and key.lower() in _FILTERS and value:
            filters[key.lower()] = _filter(key.lower(), value)
            continue
        if bare.startswith("#") and len(bare) > 1:
            filters["tag"] = _filter("tag", bare[1:])
            continue
        excluded = bare.startswith("-") and len(bare) > 1
        for word in words(bare[1:] if excluded else bare):
            _check_word(word)
            if word in _STOP:
                continue
            items.append((excluded, Term((word,))))
            count += 1
        if count > MAX_TERMS:
            break
    if count > MAX_TERMS:
        raise Unprocessable(
            "A search has at most {limit} words and phrases.",
            params={"limit": MAX_TERMS},
            slug="too-many-terms",
        )
    for item in items:
        if not isinstance(item, str):
            for word in item[1].words:
                _check_word(word)
    return _assemble(items, Filters(**filters))


def _check_word(word: str) -> None:
    if len(word) > MAX_WORD_CHARS:
        raise Unprocessable(
            "A word of a search is at most {limit} characters.",
            params={"limit": MAX_WORD_CHARS},
            slug="word-too-long",
        )


def _filter(key: str, value: str) -> Any:
    if key == "has":
        raise Unprocessable("`has:` filters are not supported yet.", slug="unsupported-filter")
    if key in ("since", "until"):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise Unprocessable(
                "`{key}:` takes a date such as 2026-01-31.", params={"key": key}, slug="invalid-query"
            ) from exc
    cleaned = value.removeprefix("@") if key in ("author", "group") else value.removeprefix("#")
    if not cleaned or len(cleaned) > MAX_WORD_CHARS or _CONTROL.search(cleaned):
        raise Unprocessable(
            "`{key}:` needs a value of at most {limit} characters.",
            params={"key": key, "limit": MAX_WORD_CHARS},
            slug="invalid-query",
        )
    return cleaned.lower()


def _assemble(items: list[tuple[bool, Term] | str], filters: Filters) -> SearchQuery:
    """Clauses from the items: ``OR`` joins the positive items on its two sides."""
    clauses: list[list[Term]] = []
    excluded: list[Term] = []
    joining = after_positive = False
    for item in items:
        if isinstance(item, str):
            joining = after_positive
            continue
        is_excluded, term = item
        if is_excluded:
            excluded.append(term)
        elif joining:
            clauses[-1].append(term)
        else:
            clauses.append([term])
        joining, after_positive = False, not is_excluded
    return SearchQuery(tuple(tuple(c) for c in clauses), tuple(excluded), filters)


# Snippets --------------------------------------------------------------------------------


# How many words ``_Matcher`` keeps for a query, and for how many queries.
WORDS_KEPT = 2048
QUERIES_KEPT = 64


class _Matcher:
    """Whether a word of a text matches one of a query's: its folded form is one of the query's
    words, or its stem in a language of ``STEMMED`` one of theirs. Texts share most of their
    words, so each answer is kept, for every excerpt of the query's pages (at most
    ``WORDS_KEPT`` of them, then forgotten all at once; at most ``QUERIES_KEPT`` queries)."""

    def __init__(self, query: SearchQuery) -> None:
        self.literal = frozenset(w for term in query.terms() for w in term.words)
        self.stems = {lang: frozenset(stem(w, lang) for w in self.literal) for lang in STEMMED}
        self.known: dict[str, bool] = {}

    def __call__(self, word: str) -> bool:
        hit = self.known.get(word)
        if hit is None:
            if len(self.known) >= WORDS_KEPT:
                self.known.clear()
            folded = fold(word)
            hit = self.known[word] = folded in self.literal or any(
                stem(folded, lang) in self.stems[lang] for lang in STEMMED
            )
        return hit


@lru_cache(maxsize=QUERIES_KEPT)
def _matcher(query: SearchQuery) -> _Matcher:
    return _Matcher(query)


def highlight(text: str, query: SearchQuery, lang: str | None = None, *, width: int = 240) -> str:
    """An HTML-escaped excerpt of ``text`` of about ``width`` characters around the first
    word that matches, each matching word between ``MARK_OPEN`` and ``MARK_CLOSE``, and
    ``ELLIPSIS`` where the text was cut."""
    matches = _matcher(query)
    spans = [m.span() for m in _WORD.finditer(text) if matches(m.group())]
    start = 0
    if spans and spans[0][0] > width // 3:
        start = spans[0][0] - width // 3
        while start > 0 and not text[start - 1].isspace():
            start -= 1
    end = min(len(text), start + width)
    if end < len(text):
        while end > start + width // 2 and not text[end].isspace():
            end -= 1
    out = [ELLIPSIS] if start > 0 else []
    position = start
    for left, right in spans:
        if left < start or right > end:
            continue
        out += [html.escape(text[position:left]), MARK_OPEN, html.escape(text[left:right]), MARK_CLOSE]
        position = right
    out.append(html.escape(text[position:end]))
    if end < len(text):
        out.append(ELLIPSIS)
    return "".join(out).strip()


# The HTTP parameter -----------------------------------------------------------------------

# The answers of a search route besides its page: every service's search publishes them.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The cursor is not one of this search's (`bad-cursor`)"},
    422: {
        "description": "The query cannot be one: too long (`query-too-long`), too many words "
        "(`too-many-terms`), a word over 64 characters (`word-too-long`), control characters or a "
        "bad date (`invalid-query`), `has:` (`unsupported-filter`)"
    },
}


def query_parameter(description: str) -> Any:
    """The ``q`` parameter of a search route: ``description`` says what it finds there; the
    length is published, and checked by ``parse``, whose 422 says what is wrong."""
    limits = f"At most {MAX_QUERY_CHARS} characters and {MAX_TERMS} words or phrases."
    return Query(description=f"{description} {limits}", json_schema_extra={"maxLength": MAX_QUERY_CHARS})


# Ranking and pages -----------------------------------------------------------------------


def score(relevance: float, age_days: float) -> float:
    """Relevance, halved for every ``RECENCY_DAYS`` of age."""
    factor: float = 0.5 ** (max(age_days, 0.0) / RECENCY_DAYS)
    return float(relevance) * factor


@dataclass(frozen=True)
class Position:
    """Where the next page starts: ``offset`` into the ranked window of the matches no newer
    than ``top``; or, once the window is read, the matches older than ``older_than`` in id
    order."""

    top: str | None = None
    offset: int = 0
    older_than: str | None = None


def cursor_scope(kind: str, query: SearchQuery) -> str:
    return f"search:{kind}:{query.digest()}"


def encode_position(scope: str, position: Position) -> str:
    return encode_cursor(scope, [position.top or "", position.offset, position.older_than or ""])


def decode_position(scope: str, cursor: str | None) -> Position:
    key = decode_cursor(scope, cursor, arity=3)
    if key is None:
        return Position()
    top, offset, older_than = key
    if not (isinstance(top, str) and isinstance(offset, int) and isinstance(older_than, str)):
        raise _bad_cursor()
    if not 0 <= offset <= SEARCH_WINDOW or len(top) > 64 or len(older_than) > 64:
        raise _bad_cursor()
    return Position(top or None, offset, older_than or None)


def position_id(value: str | None) -> uuid.UUID | None:
    """A window bound that is an id (posts, comments: UUIDv7)."""
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise _bad_cursor() from exc


def _bad_cursor() -> Exception:
    from kit.errors import BadRequest

    return BadRequest("The cursor is not valid.", slug="bad-cursor")


# PostgreSQL ------------------------------------------------------------------------------

PG_SETUP: tuple[str, ...] = (
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    *(
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = '{name}') THEN
                CREATE TEXT SEARCH CONFIGURATION {name} (COPY = {base});
                ALTER TEXT SEARCH CONFIGURATION {name}
                    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, {dictionary};
            END IF;
        END $$"""  # noqa: S608 (the names are the constants below)
        for name, base, dictionary in (
            ("search_en", "english", "english_stem"),
            ("search_fr", "french", "french_stem"),
            ("search_simple", "simple", "simple"),
        )
    ),
    # Declared IMMUTABLE so that a generated column may call them: the configurations they
    # name are created above and never altered.
    """CREATE OR REPLACE FUNCTION search_config(lang text) RETURNS regconfig
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE lower(split_part(coalesce(lang, ''), '-', 1))
            WHEN 'en' THEN 'search_en'::regconfig
            WHEN 'fr' THEN 'search_fr'::regconfig
            ELSE 'search_simple'::regconfig END $$""",
    # Two vectors end to end, with a position between them that holds no word, so that no
    # phrase matches across the join (the last word of one and the first of the other).
    """CREATE OR REPLACE FUNCTION search_join(head tsvector, tail tsvector) RETURNS tsvector
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT ts_delete(head || '_:2'::tsvector || tail, '_') $$""",
    # A text of no known language is stemmed in both languages: a short comment that no
    # detector can place ("budgets, again") is still found by "budget".
    """CREATE OR REPLACE FUNCTION search_document(lang text, body text) RETURNS tsvector
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT search_join(
            CASE WHEN lang IS NULL THEN search_join(
                    to_tsvector('search_en'::regconfig, coalesce(body, '')),
                    to_tsvector('search_fr'::regconfig, coalesce(body, '')))
                ELSE to_tsvector(search_config(lang), coalesce(body, '')) END,
            to_tsvector('search_simple'::regconfig, coalesce(body, ''))) $$""",
)
PG_SETUP += (
    # A term's tsquery: the word or phrase as written and in English and French stems, each
    # form once. Immutable, so that the planner folds it into a constant and estimates its
    # rows from the distinct lexemes (three copies of one lexeme triple the estimate).
    """CREATE OR REPLACE FUNCTION search_term(body text, phrase boolean) RETURNS tsquery
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
        DECLARE
            config regconfig;
            part tsquery;
            found tsquery;
            seen tsquery[] := '{}';
        BEGIN
            FOREACH config IN ARRAY ARRAY['search_simple', 'search_en', 'search_fr']::regconfig[] LOOP
                part := CASE WHEN phrase THEN phraseto_tsquery(config, body)
                    ELSE plainto_tsquery(config, body) END;
                IF numnode(part) > 0 AND NOT part = ANY (seen) THEN
                    seen := seen || part;
                    found := CASE WHEN found IS NULL THEN part ELSE found || part END;
                END IF;
            END LOOP;
            RETURN found;
        END $$""",
)
PG_TRIGRAM = "CREATE EXTENSION IF NOT EXISTS pg_trgm"


def pg_teardown() -> tuple[str, ...]:
    """What a downgrade drops (the extensions stay: other objects may use them)."""
    return (
        "DROP FUNCTION IF EXISTS search_document(text, text)",
        "DROP FUNCTION IF EXISTS search_join(tsvector, tsvector)",
        "DROP FUNCTION IF EXISTS search_term(text, boolean)",
        "DROP FUNCTION IF EXISTS search_config(text)",
        *(
            f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {n}"
            for n in ("search_en", "search_fr", "search_simple")
        ),
    )


def pg_term(term: Term, place: int | None = None) -> ColumnElement[Any]:
    """One term as a ``tsquery`` expression; ``place``: its words are the parameters of that
    place of ``pg_terms`` (as in ``pg_tsquery(by_place=True)``)."""
    text = " ".join(term.words)
    if place is None:
        return func.search_term(text, term.phrase)
    return func.search_term(
        bindparam(f"{PG_TERM}{place}", text, type_=Text()),
        bindparam(f"{PG_PHRASE}{place}", term.phrase, type_=Boolean()),
    )


def pg_tsquery(query: SearchQuery, *, by_place: bool = False) -> ColumnElement[Any]:
    """The query as a ``tsquery`` expression; its words are bound parameters. ``by_place``:
    named by their term's place (``pg_terms``), so that every query of one ``shape`` gives
    the same statement, to be compiled once and run with each query's ``pg_terms``."""
    if query.empty:
        raise ValueError("an empty query has no tsquery")
    places = itertools.count() if by_place else None

    def term_of(term: Term) -> ColumnElement[Any]:
        return pg_term(term, None if places is None else next(places))

    expression: ColumnElement[Any] | None = None
    for clause in query.clauses:
        alternatives = term_of(clause[0])
        for term in clause[1:]:
            alternatives = func.tsquery_or(alternatives, term_of(term))
        expression = alternatives if expression is None else func.tsquery_and(expression, alternatives)
    assert expression is not None
    for term in query.excluded:
        expression = func.tsquery_and(expression, func.tsquery_not(term_of(term)))
    return expression


def pg_terms(query: SearchQuery) -> dict[str, Any]:
    """The values of ``pg_tsquery(query, by_place=True)``'s parameters."""
    terms = [*query.terms(), *query.excluded]
    values: dict[str, Any] = {}
    for place, term in enumerate(terms):
        values[f"{PG_TERM}{place}"] = " ".join(term.words)
        values[f"{PG_PHRASE}{place}"] = term.phrase
    return values


def shape(query: SearchQuery) -> tuple[Any, ...]:
    """What the statements of a query depend on but its values: how many terms each clause
    has, how many are excluded, and which filters it uses."""
    filters = query.filters
    return (
        tuple(len(clause) for clause in query.clauses),
        len(query.excluded),
        tuple(getattr(filters, name) is not None for name in ("author", "group", "tag", "since", "until")),
    )


# SQLite ----------------------------------------------------------------------------------


def sqlite_index(text: str | None, lang: str | None) -> tuple[str, str]:
    """The ``stems`` and ``words`` columns of a text's FTS5 row; a text of no known language
    (``lang`` None) has its English and then its French stems."""
    found = words(text or "")
    languages = STEMMED if lang is None else (config(lang),)
    return " ".join(stem(w, language_) for language_ in languages for w in found), " ".join(found)


def _fts_term(term: Term, stems: str, words_: str) -> str:
    alternatives = [f'{stems} : "{" ".join(stem(w, lang) for w in term.words)}"' for lang in STEMMED]
    alternatives.append(f'{words_} : "{" ".join(term.words)}"')
    return "(" + " OR ".join(dict.fromkeys(alternatives)) + ")"


def sqlite_match(query: SearchQuery, *, stems: str = "stems", words: str = "words") -> str:
    """The query as an FTS5 ``MATCH`` expression over the ``stems`` and ``words`` columns (or
    column sets, such as ``{name_stems purpose_stems}``: constants of the caller's, never
    input). Every word in it is a run of letters and digits, so it cannot carry FTS5 syntax."""
    if query.empty:
        raise ValueError("an empty query has no MATCH expression")
    clauses = [
        "(" + " OR ".join(_fts_term(t, stems, words) for t in clause) + ")" for clause in query.clauses
    ]
    expression = "(" + " AND ".join(clauses) + ")"
    for term in query.excluded:
        expression += " NOT " + _fts_term(term, stems, words)
    return expression


def _sqlite_stems(lang: str | None, text: str | None) -> str:
    return sqlite_index(text, lang)[0]


def _sqlite_words(text: str | None) -> str:
    return " ".join(words(text or ""))


def register_sqlite(dbapi_connection: Any) -> None:
    """``search_stems(lang, text)`` and ``search_words(text)`` on a SQLite connection, for the
    triggers that keep FTS5 tables."""
    dbapi_connection.create_function("search_stems", 2, _sqlite_stems, deterministic=True)
    dbapi_connection.create_function("search_words", 1, _sqlite_words, deterministic=True)
