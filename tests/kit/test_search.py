"""kit.search: the query syntax and its limits, folding, stemming and languages, the snippet,
the window cursor, and the same matches from PostgreSQL's tsvector and SQLite's FTS5."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from sqlalchemy import column, create_engine, select, table, text
from sqlalchemy.engine import make_url

from kit import search
from kit.errors import BadRequest, Unprocessable
from kit.search import Filters, Position, Term, parse

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")

DOCUMENTS = {
    1: ("en", "The planning meeting for the budget is on Monday"),
    2: ("fr", "Les réunions de planification auront lieu à Montréal"),
    3: ("fr", "Compte rendu de la reunion du comité"),
    4: ("en", "Quarterly budget review: XJ-42 project codes"),
    5: (None, "Kubernetes upgrade window tonight"),
    6: ("en", "Budget meeting moved; planning later"),
    7: ("en", "Data lake cloud"),
    8: (None, "Meetings tomorrow"),
    9: ("de", "Besprechungen morgen"),
}

# (query, the documents it finds): the same on both databases.
CASES = [
    ("plan", {1, 6}),  # English stemming: "planning" by "plan"
    ("réunion", {2, 3}),  # French stemming and accents: "réunions", "reunion"
    ("reunions", {2, 3}),
    ("MONTREAL", {2}),  # accents and case either way
    ('"planning meeting"', {1}),  # a phrase, in order
    ('"meeting planning"', set()),
    ("budget -review", {1, 6}),
    ("kubernetes OR comité", {3, 5}),
    ("budget meeting", {1, 6}),
    ("xj", {4}),  # a word no language knows, literally
    ("kubernetes", {5}),  # a text of no language, literally
    ('"unbalanced meeting', set()),
    ('"cloud data"', set()),  # no phrase across the end of one indexing and the start of the next
    ('"lake cloud"', {7}),
    ("meet", {1, 6, 8}),  # a text of no known language in both languages' stems
    ("besprechung", set()),  # a declared language with no stemming: as written only
    ("besprechungen", {9}),
]


def test_words_are_folded_and_split_on_anything_but_letters_and_digits() -> None:
    assert search.fold("Œuvre À l'ÉTÉ Straße") == "oeuvre a l'ete strasse"
    assert search.words("C'est l'équipe_A, XJ-42!") == ["c", "est", "l", "equipe", "a", "xj", "42"]


def test_the_syntax_words_phrases_or_exclusions_and_filters() -> None:
    query = parse(
        'budget "planning meeting" review OR audit -draft -"old plan" author:@Alice #Ops since:2026-01-31'
    )
    assert query.clauses == (
        (Term(("budget",)),),
        (Term(("planning", "meeting")),),
        (Term(("review",)), Term(("audit",))),
    )
    assert query.excluded == (Term(("draft",)), Term(("old", "plan")))
    assert query.filters == Filters(author="alice", tag="ops", since=date(2026, 1, 31))
    assert not query.empty


@pytest.mark.parametrize(
    "q", ["the and of", "le la et", "OR", "OR OR OR", "-budget", '""', "   ", "!!! ??? ***"]
)
def test_queries_with_nothing_to_find_are_empty(q: str) -> None:
    assert parse(q).empty


def test_stop_words_stay_inside_a_phrase() -> None:
    assert parse('"plan de travail"').clauses == ((Term(("plan", "de", "travail")),),)


@pytest.mark.parametrize(
    ("q", "slug"),
    [
        ("a" * 257, "query-too-long"),
        (" ".join(f"w{i}" for i in range(1000))[:256], "too-many-terms"),
        ("budget\x00", "invalid-query"),
        ("budget\x1b[31m", "invalid-query"),
        ("x" * 65, "word-too-long"),
        ("since:yesterday", "invalid-query"),
        ("has:media", "unsupported-filter"),
    ],
)
def test_what_cannot_be_a_query_is_a_422(q: str, slug: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        parse(q)
    assert caught.value.slug == slug


def test_regex_and_sql_metacharacters_are_only_words() -> None:
    query = parse(r"budget.* (x|y) [a-z]+ %_ \ OR 1=1 '; DROP TABLE post; --")
    found = {w for term in query.terms() for w in term.words}
    assert found == {"budget", "x", "z", "1", "drop", "table", "post"}  # "y", "a": stop words


def test_languages_are_checked_and_written_in_their_usual_case() -> None:
    assert search.language("fr-ca") == "fr-CA"
    assert search.language("zh-hant-tw") == "zh-Hant-TW"
    assert search.language(None) is None
    for bad in ["", "f", "french!", "en_US", "x" * 36, "en--us", "12"]:
        with pytest.raises(Unprocessable):
            search.language(bad)
    assert search.config("fr-CA") == "fr"
    assert search.config("de") == "simple"
    assert search.config(None) == "simple"


def test_english_and_french_are_detected_by_their_stop_words() -> None:
    assert search.detect("Bonjour à tous, la réunion est reportée à jeudi") == "fr"
    assert search.detect("The meeting is moved to Thursday and the room is booked") == "en"
    assert search.detect("Budget") is None
    assert search.detect("") is None


def test_a_snippet_marks_the_matching_words_and_escapes_the_rest() -> None:
    query = parse("réunion plan")
    text_ = "<script>x</script> " + "filler " * 40 + "the Réunions & the planning <b>now</b> " + "tail " * 60
    snippet = search.highlight(text_, query, "fr", width=120)
    assert "<mark>Réunions</mark>" in snippet
    assert "<mark>planning</mark>" in snippet
    assert "&amp;" in snippet and "&lt;b&gt;" in snippet
    assert "<script>" not in snippet and "<b>" not in snippet
    assert snippet.startswith(search.ELLIPSIS) and snippet.endswith(search.ELLIPSIS)
    assert len(snippet) < 120 + 80


def test_a_snippet_without_a_match_is_the_start_of_the_text() -> None:
    assert search.highlight("Nothing here to <mark>", parse("budget")) == "Nothing here to &lt;mark&gt;"


def test_what_a_query_matched_is_kept_for_that_query_only() -> None:
    text_ = "the budget plan and the planning budget"
    assert (
        search.highlight(text_, parse("budget"))
        == "the <mark>budget</mark> plan and the planning <mark>budget</mark>"
    )
    # the same words, another query: the answers kept for the first do not carry over
    assert (
        search.highlight(text_, parse("plans"))
        == "the budget <mark>plan</mark> and the <mark>planning</mark> budget"
    )
    assert (
        search.highlight(text_, parse("budget"))
        == "the <mark>budget</mark> plan and the planning <mark>budget</mark>"
    )


def test_the_words_kept_for_a_query_are_bounded() -> None:
    query = parse("bounded")
    kept = search.WORDS_KEPT
    text_ = " ".join(f"w{i}" for i in range(kept + 10)) + " Bounded"
    assert search.highlight(text_, query, width=len(text_)).endswith("<mark>Bounded</mark>")
    matcher = search._matcher(query)
    assert 0 < len(matcher.known) <= kept
    assert matcher("bounded") and not matcher("w1")


def test_the_score_halves_every_thirty_days() -> None:
    assert search.score(1.0, 0) == 1.0
    assert search.score(1.0, 30) == pytest.approx(0.5)
    assert search.score(0.8, 60) == pytest.approx(0.2)


def test_a_cursor_belongs_to_its_query() -> None:
    query = parse("budget")
    scope = search.cursor_scope("posts", query)
    position = Position(top=str(uuid.uuid4()), offset=40)
    assert search.decode_position(scope, search.encode_position(scope, position)) == position
    other = search.cursor_scope("posts", parse("planning"))
    with pytest.raises(BadRequest):
        search.decode_position(other, search.encode_position(scope, position))
    with pytest.raises(BadRequest):
        search.decode_position(
            scope, search.encode_position(scope, Position(offset=search.SEARCH_WINDOW + 1))
        )
    with pytest.raises(BadRequest):
        search.position_id("not-an-id")


# The two databases -----------------------------------------------------------------------


def _sqlite_finder() -> Callable[[str], set[int]]:
    connection = sqlite3.connect(":memory:")
    search.register_sqlite(connection)
    connection.executescript(
        """
        CREATE TABLE doc (id INTEGER PRIMARY KEY, lang TEXT, body TEXT);
        CREATE VIRTUAL TABLE doc_search USING fts5(stems, words, tokenize = "unicode61 remove_diacritics 2");
        CREATE TRIGGER doc_ai AFTER INSERT ON doc BEGIN
            INSERT INTO doc_search(rowid, stems, words)
            VALUES (new.id, search_stems(new.lang, new.body), search_words(new.body));
        END;
        """
    )
    connection.executemany("INSERT INTO doc VALUES (?, ?, ?)", [(k, *v) for k, v in DOCUMENTS.items()])

    def find(q: str) -> set[int]:
        query = parse(q)
        if query.empty:
            return set()
        rows = connection.execute(
            "SELECT rowid FROM doc_search WHERE doc_search MATCH ?", (search.sqlite_match(query),)
        )
        return {r[0] for r in rows}

    return find


@pytest.fixture(scope="module")
def postgres_finder() -> Iterator[Callable[[str], set[int]]]:
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL: set TEST_DATABASE_URL")
    base = make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg")
    name = f"gs_test_search_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(base.set(database=name))
    try:
        with engine.begin() as conn:
            for statement in search.PG_SETUP:
                conn.execute(text(statement))
            for statement in search.PG_SETUP:  # idempotent: a second service's migration
                conn.execute(text(statement))
            conn.execute(
                text(
                    "CREATE TABLE doc (id int PRIMARY KEY, lang text, body text, "
                    "search tsvector GENERATED ALWAYS AS (search_document(lang, body)) STORED)"
                )
            )
            for key, (lang, body) in DOCUMENTS.items():
                conn.execute(
                    text("INSERT INTO doc (id, lang, body) VALUES (:i, :l, :b)"),
                    {"i": key, "l": lang, "b": body},
                )

        def find(q: str) -> set[int]:
            query = parse(q)
            if query.empty:
                return set()
            statement = select(column("id")).select_from(table("doc"))
            statement = statement.where(column("search").op("@@")(search.pg_tsquery(query)))
            with engine.connect() as conn:
                return {r[0] for r in conn.execute(statement)}

        yield find
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE doc"))
            for statement in search.pg_teardown():
                conn.execute(text(statement))
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize(("q", "expected"), CASES)
def test_sqlite_finds_what_the_syntax_says(q: str, expected: set[int]) -> None:
    assert _sqlite_finder()(q) == expected


@pytest.mark.postgres
@pytest.mark.parametrize(("q", "expected"), CASES)
def test_postgresql_finds_the_same(
    postgres_finder: Callable[[str], set[int]], q: str, expected: set[int]
) -> None:
    assert postgres_finder(q) == expected
