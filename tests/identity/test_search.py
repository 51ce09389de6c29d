"""People search (``GET /api/v1/search/people``, services/identity/search.py): a misspelled name
still finds the person; skills, departments and job titles match stemmed, accents either way;
only the caller's context and only what the directory lists; pages by (score, handle); no
query answers a 500; the index follows every change, on SQLite by its triggers; and on
PostgreSQL the statement stays on its indexes at a realistic size."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy import insert, text, update
from sqlmodel import col

from kit.compiled import Made, compile_statement
from kit.search import parse
from services.identity import search
from services.identity.models import Account, Persona
from tests.helpers import admin, auth, person, with_personal

SEARCH = "/api/v1/search/people"


async def _someone(suite, handle: str, **profile: Any) -> tuple[str, str]:
    """A person with a professional profile; returns (token, persona id)."""
    token, persona_id = await person(suite.client, handle)
    if profile:
        resp = await suite.client.patch(f"/api/v1/personas/{persona_id}", json=profile, headers=auth(token))
        assert resp.status_code == 200, resp.text
    return token, persona_id


async def _search(suite, token: str, q: str, **params: Any) -> dict[str, Any]:
    resp = await suite.client.get(SEARCH, params={"q": q, **params}, headers=auth(token))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def _handles(suite, token: str, q: str) -> list[str]:
    return [item["handle"] for item in (await _search(suite, token, q))["items"]]


async def test_a_misspelled_name_finds_the_person(suite):
    token, _ = await _someone(suite, "margret_smith", display_name="Margret Smith")
    await _someone(suite, "margaret_jones", display_name="Margaret Jones")
    await _someone(suite, "omar_khan", display_name="Omar Khan")

    body = await _search(suite, token, "Margaret Smyth")
    assert [i["handle"] for i in body["items"]] == ["margret_smith"]  # not Margaret Jones: no Smyth
    assert "<mark>Margret</mark> <mark>Smith</mark>" in body["items"][0]["highlight"]
    # the item is the directory's persona, and where it matched
    directory = (
        await suite.client.get("/api/v1/personas", params={"q": "margret"}, headers=auth(token))
    ).json()
    assert {k: v for k, v in body["items"][0].items() if k != "highlight"} == directory["items"][0]

    assert await _handles(suite, token, "margaret") == ["margaret_jones", "margret_smith"]  # exact first
    assert await _handles(suite, token, "Margret Smith") == ["margret_smith"]
    assert await _handles(suite, token, '"Margaret Smyth"') == []  # a phrase is exact
    assert await _handles(suite, token, "Smyth") == ["margret_smith"]
    assert await _handles(suite, token, "margaret -jones") == ["margret_smith"]


async def test_skills_departments_and_job_titles_stemmed_accents_either_way(suite):
    token, _ = await _someone(
        suite,
        "zoe",
        display_name="Zoé Lefèvre",
        job_title="Senior Data Analysts",
        department="Finances publiques",
        skills=["Kubernetes", "Gestion de réunions"],
    )
    await _someone(suite, "yann", display_name="Yann Le Gall", job_title="Chef de projet", department="Audit")

    for q in (
        "kubernetes",  # a skill
        "KUBERNETS",  # misspelled
        "analyst",  # a job title, stemmed (English)
        "finance",  # a department, stemmed
        "reunion",  # a skill, accents the other way and stemmed (French)
        "zoe lefevre",  # accents either way
        "Zoé LEFÈVRE",
        "data OR nothing",
        '"data analysts"',
    ):
        assert await _handles(suite, token, q) == ["zoe"], q
    assert await _handles(suite, token, "projet audit") == ["yann"]
    assert await _handles(suite, token, "kubernetes audit") == []  # every word must match
    assert await _handles(suite, token, "kubernetes -finances") == []


async def test_a_search_sees_only_its_own_context_and_never_links_two_personas(suite):
    ada = await with_personal(suite.client, "ada", display_name="Ada Lovelace", bio="Weekend sailor")
    patch = {"display_name": "Ada Byron", "job_title": "Cryptographer", "skills": ["Analytical engines"]}
    resp = await suite.client.patch(f"/api/v1/personas/{ada['pro_id']}", json=patch, headers=auth(ada["pro"]))
    assert resp.status_code == 200, resp.text
    bob = await with_personal(suite.client, "bob")

    async def found(token: str, q: str) -> list[str]:
        resp = await suite.client.get(SEARCH, params={"q": q}, headers=auth(token))
        assert resp.status_code == 200, resp.text
        assert not (ada["pro_id"] in resp.text and ada["personal_id"] in resp.text)
        return [item["id"] for item in resp.json()["items"]]

    for token in (bob["pro"], ada["pro"]):
        assert await found(token, "ada") == [ada["pro_id"]]
        assert await found(token, "cryptographer") == [ada["pro_id"]]
        assert await found(token, "lovelace") == []  # the personal persona's name
        assert await found(token, "ada_home") == []
    for token in (bob["personal"], ada["personal"]):
        assert await found(token, "ada") == [ada["personal_id"]]
        assert await found(token, "lovelace") == [ada["personal_id"]]
        for q in ("byron", "cryptographer", "analytical engines", "analytical"):
            assert await found(token, q) == [], q


async def test_only_what_the_directory_lists(suite):
    """Never a deactivated account's persona, one held by moderation, an erased or a hidden
    personal persona; the index follows edits and erasure at once."""
    root, _ = await admin(suite, "root_reader")
    quiet = await with_personal(suite.client, "quiet", display_name="Quentin Hidden", discoverable=False)
    gone = await with_personal(suite.client, "gone", display_name="Gaston Erased")
    _, held_id = await _someone(suite, "held", display_name="Hector Held")
    left, _ = await _someone(suite, "left", display_name="Lena Left")
    account_id = (await suite.client.get("/api/v1/me", headers=auth(left))).json()["account_id"]
    _, edited_id = await _someone(suite, "edited", job_title="Gardener")

    assert await _handles(suite, quiet["personal"], "quentin") == []
    assert await _handles(suite, gone["personal"], "gaston") == ["gone_home"]
    resp = await suite.client.delete("/api/v1/me/personas/personal", headers=auth(gone["pro"]))
    assert resp.status_code == 204, resp.text
    assert await _handles(suite, quiet["personal"], "gaston") == []

    async with suite.identity.state.database.sessionmaker() as session:
        await session.execute(
            update(Persona).where(col(Persona.id) == uuid.UUID(held_id)).values(moderation_hold=True)
        )
        await session.execute(
            update(Persona).where(col(Persona.id) == uuid.UUID(edited_id)).values(job_title="Astronomer")
        )
        await session.commit()
    assert await _handles(suite, root, "lena") == ["left"]
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"status": "deactivated", "reason": "Left the agency."},
        headers=auth(root),
    )
    assert resp.status_code == 200, resp.text
    assert await _handles(suite, root, "hector") == []
    assert await _handles(suite, root, "lena") == []
    assert await _handles(suite, root, "gardener") == []
    assert await _handles(suite, root, "astronomer") == ["edited"]


async def test_pages_walk_every_match_once_best_first(suite):
    token, _ = await _someone(suite, "pager", display_name="Pat Pager")
    names = ["Robin Archer", "Robyn Archer", "Robin Arches", "Robin Archerson", "Roberta Archer", "Robin"]
    for n, name in enumerate(names):
        await _someone(suite, f"archer_{n}", display_name=name, department="Archery")

    everything = await _search(suite, token, "robin archer", limit=100)
    assert everything["next_cursor"] is None
    expected = [i["handle"] for i in everything["items"]]
    assert expected[0] == "archer_0" and len(expected) >= 4

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        resp = await suite.client.get(SEARCH, params={"q": "robin archer", **params}, headers=auth(token))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body["items"]) <= 2
        seen += [i["handle"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            assert "Link" not in resp.headers
            break
        assert 'rel="next"' in resp.headers["Link"]
    assert seen == expected

    # a cursor of another query, or not a cursor, is refused
    first = await _search(suite, token, "robin archer", limit=1)
    for q, cursor in (("robin", first["next_cursor"]), ("robin archer", "not-a-cursor")):
        resp = await suite.client.get(SEARCH, params={"q": q, "cursor": cursor}, headers=auth(token))
        assert resp.status_code == 400, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")


async def test_equal_scores_page_by_handle_and_a_shape_is_made_once(suite, monkeypatch):
    """Personas of the same name score alike: the pages walk them by handle, each once (the
    cursor's key is applied by the statement itself on PostgreSQL). The statement is compiled
    once for a shape of query (decision 0041): a misspelling of the same shape reuses it with
    its own words."""
    made: list[Any] = []
    build = search.pg_statement

    def counted(query: Any, kind: str) -> Any:
        made.append(search.pg_shape(query, kind))
        return build(query, kind)

    monkeypatch.setattr(search, "pg_statement", counted)
    monkeypatch.setattr(search, "PG_MADE", Made(16))
    token, _ = await _someone(suite, "teller", display_name="Tess Teller")
    for n in (3, 0, 4, 1, 2):
        await _someone(suite, f"twin_{n}", display_name="Quentin Quimby")

    for q in ("Quentin Quimby", "Quentin Quimbi"):
        seen, cursor = [], None
        while True:
            body = await _search(suite, token, q, limit=2, **({"cursor": cursor} if cursor else {}))
            assert len(body["items"]) <= 2
            seen += [i["handle"] for i in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"twin_{n}" for n in range(5)], q
    if suite.identity.state.database.is_postgres:
        assert made == [search.pg_shape(parse("Quentin Quimby"), "professional")]
    else:
        assert made == []  # SQLite builds its statements each time, through the ORM


HOSTILE = [
    "",
    " ",
    "the of and",
    "-robin",
    "OR",
    "OR OR robin",
    '"',
    '""',
    '"unbalanced robin',
    "robin*",
    "NEAR(robin archer)",
    "robin AND NOT archer",
    "stems:robin",
    "words : robin",
    "^robin",
    "'; DROP TABLE persona; --",
    "%_%\\",
    "<script>alert(1)</script>",
    "author:@robin group:x tag:y #z since:2026-01-01 until:2026-12-31",
    "\u210c\U0001d522\U0001d529\U0001d529\U0001d52c \U0001f600 日本語 עברית",
    "İstanbul ǅ ß ﬁ",
    "\u200b\u200d\ufeff",
    "a" * 64,
    " ".join(["robin"] * 16),
    " OR ".join(f"w{i}xyz" for i in range(16)),
    ("the " * 64)[:256],
]


@pytest.mark.parametrize("q", HOSTILE)
async def test_any_query_answers_without_a_server_error(suite, q):
    token, _ = await _someone(suite, "robin", display_name="Robin Archer")
    resp = await suite.client.get(SEARCH, params={"q": q}, headers=auth(token))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("q", "slug"),
    [
        ("x" * 257, "query-too-long"),
        ("robin\x00archer", "string_unstorable"),  # refused before any search, as everywhere
        ("robin\x1b", "invalid-query"),
        ("has:image", "unsupported-filter"),
        ("since:yesterday", "invalid-query"),
        (" ".join(f"w{i}" for i in range(17)), "too-many-terms"),
        ("a" * 65, "word-too-long"),
    ],
)
async def test_what_cannot_be_a_query_is_a_422(suite, q, slug):
    token, _ = await _someone(suite, "robin", display_name="Robin Archer")
    resp = await suite.client.get(SEARCH, params={"q": q}, headers=auth(token))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert slug in resp.text


async def test_a_token_is_needed(suite):
    resp = await suite.client.get(SEARCH, params={"q": "robin"})
    assert resp.status_code == 401


async def test_the_index_keeps_its_triggers_at_the_head_revision(suite):
    """SQLite's index lives by triggers on persona, which a later migration that rebuilds the
    table (batch_alter_table) would drop silently; PostgreSQL's by two expression indexes."""
    async with suite.identity.state.database.sessionmaker() as session:
        if session.get_bind().dialect.name == "postgresql":
            found = await session.scalars(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'persona'")
            )
            assert {"ix_persona_search_trgm", "ix_persona_search_document"} <= set(found)
        else:
            found = await session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
            assert {"persona_search_insert", "persona_search_update", "persona_search_delete"} <= set(found)


# pg_trgm's formula, in Python --------------------------------------------------------------


def test_word_similarity_examples():
    assert search.word_similarity("word", "two words") == pytest.approx(0.8)
    assert search.word_similarity("smyth", "margret smith") == pytest.approx(1 / 3)
    assert search.word_similarity("", "anything") == 0.0
    assert search.trigrams("Ab-c") == ["  a", " ab", "ab ", "  c", " c "]


def test_what_matches_on_sqlite_is_what_postgresql_decides():
    words = ["margret", "smith", "margret", "smith", "senior", "data", "analysts", "finances"]
    assert search.matches(parse("margaret smyth"), words)
    assert search.matches(parse("analyst finance"), words)
    assert search.matches(parse('"data analysts"'), words)
    assert not search.matches(parse('"analysts data"'), words)
    assert not search.matches(parse("margaret jones"), words)
    assert not search.matches(parse("smi"), words)  # too short to be a misspelling


def _pairs(count: int) -> list[tuple[str, str]]:
    rng = random.Random(34)

    def word() -> str:
        return "".join(rng.choice("abcdefghéi") for _ in range(rng.randint(1, 8)))

    def words(n: int) -> str:
        return rng.choice([" ", "_", "-", ", "]).join(word() for _ in range(rng.randint(1, n)))

    return [(words(3), words(9)) for _ in range(count)] + [
        ("margaret smyth", "margret smith"),
        ("Baykal", "Lake Baykal shore"),
        ("x", "x y"),
        ("ab ab", "ab"),
    ]


@pytest.mark.postgres
async def test_word_similarity_is_the_same_as_pg_trgm(suite):
    pairs = _pairs(2000)
    async with suite.identity.state.database.sessionmaker() as session:
        for a, b in pairs:
            expected = await session.scalar(text("SELECT word_similarity(:a, :b)"), {"a": a, "b": b})
            assert search.word_similarity(a, b) == pytest.approx(expected, abs=1e-7), (a, b)


# PostgreSQL's plan -------------------------------------------------------------------------

# fmt: off
FIRST = [
    "Margaret", "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Omar",
    "Zoé", "Jean", "Amélie", "Robin", "Ada", "Hélène", "Yann", "Priya", "Kwame", "Aïcha", "François",
    "Chloé", "Mathis", "Inès", "Léa", "Hugo", "Noémie", "Grégoire", "Björn", "Siobhán",
]
LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
    "Martin", "Lee", "Perez", "Thompson", "White", "Khan", "Lefèvre", "Dupont", "Nguyen", "Archer",
    "Okafor", "Rossi", "Müller", "Côté", "Bélanger", "Gagnon", "Tremblay", "Roy", "Fortin",
]
JOBS = [
    "Policy Adviser", "Senior Policy Adviser", "Data Analyst", "Data Scientist", "Software Developer",
    "Delivery Manager", "Product Manager", "User Researcher", "Chef de projet", "Juriste", "Accountant",
    "Content Designer", "Agent administratif", "Conseillère juridique",
]
DEPARTMENTS = [
    "Digital Services", "Finances publiques", "Human Resources", "Legal", "Communications", "Policy Unit",
    "Procurement", "Statistics", "Ressources humaines", "Audit interne",
]
SKILLS = [
    "Python", "SQL", "Accessibility", "User research", "Budgeting", "Contract management", "Negotiation",
    "Public speaking", "Kubernetes", "Gestion de réunions", "Excel", "Rédaction", "Agile",
    "Data visualisation",
]
# fmt: on

WORST = [
    "Margaret Smyth",
    "analyst",
    "kubernetes",
    "smith -margaret",
    '"chef de projet" finances',
    " ".join(f"wordy{i}zz" for i in range(16)),
    " OR ".join(
        f"{w}xx" for w in ("margaret", "omarr", "zoeee", "jeann", "ameli", "robbin", "adaaa", "helen")
    ),
    "qx",
    "a" * 64,
]


@pytest.mark.postgres
async def test_the_plan_stays_on_the_indexes_at_a_realistic_size(suite):
    rng = random.Random(2026)
    accounts, people = [], []
    for n in range(10_000):
        account = uuid.uuid4()
        first, last = rng.choice(FIRST), rng.choice(LAST)
        accounts.append({"id": account, "email": f"p{n}@agency.example", "password_hash": "!", "roles": []})
        people.append(
            {
                "id": uuid.uuid4(),
                "account_id": account,
                "kind": "professional" if n % 5 else "personal",
                "handle": f"{first[:4].lower()}_{n}".replace("é", "e"),
                "display_name": f"{first} {last}",
                "job_title": rng.choice(JOBS),
                "department": rng.choice(DEPARTMENTS),
                "skills": rng.sample(SKILLS, rng.randint(0, 3)),
                "interests": [],
            }
        )
    database = suite.identity.state.database
    async with database.sessionmaker() as session:
        await session.execute(insert(Account), accounts)
        await session.execute(insert(Persona), people)
        await session.commit()
    async with database.engine.connect() as conn:
        await conn.execute(text("ANALYZE account, persona"))
        await conn.commit()

    # The statement as it runs: compiled once for its shape, planned for its values, on a
    # connection with people search's settings.
    async with database.raw(search.PG_PLAN, search.PG_SETTINGS) as connection:
        for q in WORST:
            query = parse(q)
            compiled = compile_statement(search.pg_statement(query, "professional"))
            args = compiled.args(search.pg_values(query, None, 21))
            plan = "\n".join(r[0] for r in await connection.fetch(f"EXPLAIN {compiled.sql}", *args))
            assert "Seq Scan" not in plan, (q, plan)
            assert "ix_persona_search" in plan, (q, plan)

    token, _ = await _someone(suite, "reader", display_name="Reader")
    found = await _search(suite, token, "Margaret Smyth", limit=100)
    assert found["items"] and all("Smith" in i["display_name"] for i in found["items"][:5])
