"""What a search withstands and how it reads the index: the worst queries answer a 200 or a
422 problem, never a 500; the window is the newest matches whatever path reads them (along the
primary key, or from the GIN index once matches are sparse, on PostgreSQL); and on PostgreSQL
no statement a search runs reads the whole post table, for a common word, a rare one or the
worst inputs, on a table large enough and analysed for the plans to be the real ones."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text

from kit.search import parse
from services.feed import search, search_sql
from services.feed.models import REACTION_KINDS, Post
from tests.feed.support import every_page, people, post, statements
from tests.helpers import auth

COUNTS = [f"{kind}_count" for kind in REACTION_KINDS] + ["comment_count"]
POSTS = "/api/v1/search/posts"
COMMENTS = "/api/v1/search/comments"
SEARCHES = (POSTS, COMMENTS, "/api/v1/posts")

WORST = [
    "",
    " ",
    "the of and",
    "le la les des",
    "OR",
    "OR OR OR",
    "- -- ---",
    '"',
    '""',
    '"""',
    '"unbalanced quote',
    'un"balanced',
    "-",
    '-"',
    "--budget",
    "-budget",
    "-budget -plan",
    "budget OR",
    "OR budget",
    "budget OR OR plan",
    "a" * 64,
    "a" * 65,
    "x" * 5000,
    "budget " * 16,
    "budget " * 17,
    " ".join(f"w{i}" for i in range(1000)),
    "a\x00b",
    "\x00",
    "budget\x7f",
    "tab\tand\nnewline\rreturn",
    "'; DROP TABLE post; --",
    "a' OR '1'='1",
    "\\",
    '\\\\"',
    "%",
    "%%",
    "_",
    "*",
    ".*",
    "(a|b)+",
    "[^x]",
    "$1",
    "^budget$",
    "NEAR(a b)",
    "stems:budget",
    "words:budget",
    "{stems words}: budget",
    "budget*",
    "^",
    "+",
    "\u0000",
    "日本語のテキスト",
    "🎉🎉🎉",
    "مرحبا",
    "e\u0301",
    "ǅ",
    "ﬁnance",
    "\ufeffbudget",
    "\u200b",
    "author:",
    "author:@",
    "author:@@@",
    "author:%",
    "author:" + "a" * 65,
    "group:../../etc",
    "tag:#",
    "#",
    "##",
    "#" + "x" * 70,
    "since:2026-13-45",
    "since:yesterday",
    "until:0000-01-01",
    "since:9999-12-31",
    "until:9999-12-31",
    "since:0001-01-01",
    "until:0001-01-01",
    "has:media",
    "HAS:link",
    "since:2026-01-01 until:2025-01-01",
]


async def test_the_worst_queries_answer_200_or_a_422_problem(suite):
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    said = await post(suite.client, ada, "budget plan for the team #ops")
    await suite.client.post(
        f"/api/v1/posts/{said['id']}/comments", json={"body": "budget"}, headers=auth(bob)
    )
    for path in SEARCHES:
        for q in WORST:
            resp = await suite.client.get(path, params={"q": q}, headers=auth(bob))
            assert resp.status_code in (200, 422), (path, q, resp.status_code, resp.text)
            if resp.status_code == 422:
                assert resp.headers["content-type"] == "application/problem+json", (path, q)
            else:
                assert set(resp.json()) == {"items", "next_cursor"}, (path, q)
    for q, slug in (
        ("x" * 257, "query-too-long"),
        ("a" * 65, "word-too-long"),
        ("budget " * 17, "too-many-terms"),
        ("since:yesterday", "invalid-query"),
        ("budget\x7f", "invalid-query"),
        ("has:media", "unsupported-filter"),
    ):
        resp = await suite.client.get(POSTS, params={"q": q}, headers=auth(bob))
        assert resp.status_code == 422 and resp.json()["type"].endswith(slug), (q, resp.text)


async def test_bad_paging_parameters_are_4xx(suite):
    ((ada, _),) = await people(suite, "ada")
    for params in (
        {"q": "budget", "limit": "0"},
        {"q": "budget", "limit": "101"},
        {"q": "budget", "limit": "x"},
        {"q": "budget", "cursor": "x" * 513},
        {"q": "budget", "cursor": "%%%"},
        {},
    ):
        for path in SEARCHES:
            resp = await suite.client.get(path, params=params, headers=auth(ada))
            assert resp.status_code in (400, 422), (path, params, resp.text)
    assert (await suite.client.get(POSTS, params={"q": "budget"})).status_code == 401


async def _seed(suite: Any, author: str, bodies: list[str], *, start: datetime) -> list[uuid.UUID]:
    """Posts written straight into feed's table, a minute apart from ``start``, to
    ``author``'s whole context; their time-ordered ids, oldest first."""
    rng = random.Random(7)
    ids, rows = [], []
    for i, body in enumerate(bodies):
        at = start + timedelta(minutes=i)
        millis = int(at.timestamp() * 1000)
        value = millis << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
        ids.append(uuid.UUID(int=value))
        rows.append(
            {
                "id": ids[-1],
                "author_id": uuid.UUID(author),
                "context": "professional",
                "audience": "organisation",
                "body": body,
                "mentions": [],
                "tags": [],
                "links": [],
                **dict.fromkeys(COUNTS, 0),
                "created_at": at,
                "updated_at": at,
            }
        )
    async with suite.feed.state.database.sessionmaker() as session:
        for start_at in range(0, len(rows), 5_000):
            await session.execute(insert(Post.__table__), rows[start_at : start_at + 5_000])  # type: ignore[attr-defined]
        await session.commit()
    return ids


async def _vacuum(suite: Any) -> None:
    """What autovacuum does once a table has grown: the planner's statistics, and the
    visibility map that lets a scan of the primary key skip the table."""
    engine = suite.feed.state.database.engine
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))


async def test_the_window_is_the_newest_matches_however_sparse(suite, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_WINDOW", 6)  # chunks of 60 rows
    (_, ada_id), (bob, _) = await people(suite, "ada", "bob")
    rng = random.Random(3)
    every = {"dense": 2, "medium": 25, "sparse": 90, "single": 10_000}
    bodies = []
    for i in range(700):
        words = [word for word, step in every.items() if i % step == 0] or ["filler"]
        rng.shuffle(words)
        bodies.append(" ".join([*words, f"n{i}"]))
    bodies[333] += " single"
    ids = await _seed(suite, ada_id, bodies, start=datetime.now(UTC) - timedelta(days=1))
    await _vacuum(suite)
    for word in every:
        expected = [str(ids[i]) for i in range(len(bodies)) if word in bodies[i].split()][::-1]
        pages = await every_page(suite.client, bob, POSTS, "id", q=word, limit=4)
        assert set(pages[:6]) == set(expected[:6]), word  # the window: the newest six, ranked
        assert pages[6:] == expected[6:], word  # then the older ones, newest first
        assert len(pages) == len(set(pages)) == len(expected), word


@pytest.mark.postgres
async def test_matches_read_from_the_index_in_ranges_are_the_same_newest_matches(suite, monkeypatch):
    """When the GIN index's matches are read a range of ids at a time (``_PostgresFinder._bitmap``:
    ranges of a few rows here, so that a word takes several), the pages hold exactly the
    newest matches, as reading every match at once finds them."""
    monkeypatch.setattr(search, "SEARCH_WINDOW", 6)  # chunks of 60 rows
    (_, ada_id), (bob, _) = await people(suite, "ada", "bob")
    # one match in 150 rows, the newest row among them: the first chunk (60 rows) finds one,
    # the next (240) one more, and matches so sparse come from the index
    bodies = [f"filler n{i}" + (" sparse" if i % 150 == 149 else "") for i in range(3000)]
    ids = await _seed(suite, ada_id, bodies, start=datetime.now(UTC) - timedelta(days=1))
    await _vacuum(suite)
    expected = [str(ids[i]) for i in range(len(bodies)) if "sparse" in bodies[i]][::-1]

    async def pages() -> list[str]:
        return await every_page(suite.client, bob, POSTS, "id", q="sparse", limit=4)

    monkeypatch.setattr(search, "BITMAP_MAX_ROWS", 1)  # a range of about 1 row a match
    made = search_sql.statements(
        search.POSTS, parse("sparse"), lambda: search._statements(search.POSTS, parse("sparse"))
    )
    oldest = made.bitmap.names.index(search_sql.OLDEST)
    with statements(suite) as seen:
        ranged = await pages()
    lower_bounds = [args[oldest] for sql, args in seen if sql == made.bitmap.sql]
    assert any(bound != search_sql.LOWEST for bound in lower_bounds), lower_bounds  # ranges ran
    monkeypatch.setattr(search, "BITMAP_RANGES", 1)  # every match below at once
    at_once = await pages()
    assert set(ranged[:6]) == set(expected[:6])  # the window: the newest six, ranked
    assert ranged[6:] == expected[6:]  # then the older ones, newest first
    assert ranged == at_once


# PostgreSQL's plans --------------------------------------------------------------------------------------


COMMON, RARE = "accessibility", "zeppelin"


async def _plans(suite: Any, seen: list[tuple[str, Any]]) -> list[str]:
    """The plan of every statement that reads posts among ``seen`` (as the search ran them,
    with their values and the settings of its connections), each as one text."""
    plans = []
    async with suite.feed.state.database.engine.connect() as connection:
        for name, value in search.NESTED_LOOPS.items():
            await connection.exec_driver_sql(f"SET LOCAL {name} = {value}")
        for statement, parameters in seen:
            if " post" not in statement:
                continue
            result = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            plans.append("\n".join(row[0] for row in result))
    return plans


@pytest.mark.postgres
async def test_no_search_statement_scans_the_whole_post_table(suite):
    (_, ada_id), (bob, _) = await people(suite, "ada", "bob")
    rng = random.Random(11)
    vocabulary = [
        "team",
        "project",
        "update",
        "meeting",
        "policy",
        "review",
        "draft",
        "budget",
        "service",
        "report",
        "data",
        "plan",
    ]
    bodies = []
    for i in range(40_000):
        words = rng.choices(vocabulary, k=12)
        if rng.random() < 0.05:
            words.append(COMMON)
        if i % 10_000 == 5_000:
            words.append(RARE)
        bodies.append(" ".join(words))
    await _seed(suite, ada_id, bodies, start=datetime.now(UTC) - timedelta(days=60))
    await _vacuum(suite)
    queries = [
        COMMON,
        RARE,
        f'"{COMMON} team"',
        f"{COMMON} -{RARE}",
        f"{RARE} OR {COMMON}",
        f"{COMMON} budget plan review",
        " OR ".join(vocabulary[:8]),
        f"{RARE} -team -project",
        '"unbalanced quote',
        f"{COMMON} author:ada",
        f"{RARE} since:2000-01-01 until:2999-12-31",
        "'; DROP TABLE post; -- %_*",
        "nothingmatchesthis",
    ]
    for q in queries:
        with statements(suite) as seen:
            first = await suite.client.get(POSTS, params={"q": q}, headers=auth(bob))
            assert first.status_code == 200, first.text
            cursor = first.json()["next_cursor"]
            if cursor:
                later = await suite.client.get(POSTS, params={"q": q, "cursor": cursor}, headers=auth(bob))
                assert later.status_code == 200
        plans = await _plans(suite, seen)
        assert plans, q
        for plan in plans:
            assert "Seq Scan on post" not in plan, (q, plan)
        joined = "\n".join(plans)
        if q == COMMON:
            assert "Index Scan Backward using pk_post on post" in joined, joined
            assert "ix_post_search" not in joined, joined
        if q == RARE:
            assert "Bitmap Index Scan on ix_post_search" in joined, joined
        # each match's author looked up by key: the planner's estimate of a word can be off by
        # a hundred times, and a hash join then reads every persona (decision 0048)
        assert not re.search(r"Hash (Left |Right )?Join", joined), (q, joined)
