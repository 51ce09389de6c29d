"""The terms that hold content for review: administrators keep them per context, and every
change sends feed the context's whole list at a higher version."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from services.feed.models import HeldTerm, HeldTermSet
from services.moderation.models import Term, TermSet, outbox_tables
from services.moderation.terms import MAX_TERMS
from tests.helpers import auth, person, with_personal
from tests.moderation.test_conduct import problem, staff, with_personal_token
from tests.tokens import claims, sign

TERMS = "/api/v1/admin/moderation/terms"
EVENT = "internal.moderation.terms"


async def terms_events(suite: Any) -> list[tuple[str, dict[str, Any]]]:
    """(subject, data) of every terms event in moderation's outbox, in order."""
    table = outbox_tables.event
    async with suite.moderation.state.database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(table.c.subject, table.c.data).where(table.c.type == EVENT).order_by(table.c.seq)
            )
        ).all()
    return [(r.subject, json.loads(r.data)) for r in rows]


async def stored(suite: Any) -> tuple[int, dict[str, int]]:
    """How many terms there are, and each context's term set version."""
    async with suite.moderation.state.database.sessionmaker() as session:
        count = int(await session.scalar(select(func.count()).select_from(Term)) or 0)
        sets = {s.context: s.version for s in (await session.scalars(select(TermSet))).all()}
    return count, sets


async def add(
    suite: Any, token: str, term: str, match: str = "literal", context: str = "professional"
) -> Any:
    return await suite.client.post(
        TERMS, json={"term": term, "match": match, "context": context}, headers=auth(token)
    )


async def test_every_change_publishes_the_contexts_whole_list_at_a_higher_version(suite):
    root, _ = await staff(suite, "root", "admin")

    first = await add(suite, root, "  Confidential ")
    assert first.status_code == 201, first.text
    one = first.json()
    assert one["term"] == "Confidential" and one["match"] == "literal" and one["context"] == "professional"
    uuid.UUID(one["id"])
    second = await add(suite, root, "leak", "word")
    assert second.status_code == 201, second.text
    two = second.json()
    home = await add(suite, root, "spoiler", "word", "personal")
    assert home.status_code == 201, home.text

    entry = {k: one[k] for k in ("id", "term", "match")}
    entry2 = {k: two[k] for k in ("id", "term", "match")}
    assert await terms_events(suite) == [
        ("professional", {"context": "professional", "version": 1, "terms": [entry]}),
        ("professional", {"context": "professional", "version": 2, "terms": [entry, entry2]}),
        (
            "personal",
            {
                "context": "personal",
                "version": 1,
                "terms": [{"id": home.json()["id"], "term": "spoiler", "match": "word"}],
            },
        ),
    ]

    gone = await suite.client.delete(f"{TERMS}/{one['id']}", headers=auth(root))
    assert gone.status_code == 204, gone.text
    events = await terms_events(suite)
    assert events[-1] == ("professional", {"context": "professional", "version": 3, "terms": [entry2]})
    last = await suite.client.delete(f"{TERMS}/{two['id']}", headers=auth(root))
    assert last.status_code == 204, last.text
    assert (await terms_events(suite))[-1] == (
        "professional",
        {"context": "professional", "version": 4, "terms": []},
    )

    # a term that is gone, or never was, is a 404 that changes nothing
    for missing in (one["id"], str(uuid.uuid4())):
        resp = await suite.client.delete(f"{TERMS}/{missing}", headers=auth(root))
        problem(resp, 404, "not-found")
    problem(await suite.client.delete(f"{TERMS}/not-a-uuid", headers=auth(root)), 422, "validation")
    assert len(await terms_events(suite)) == 5
    assert await stored(suite) == (1, {"professional": 4, "personal": 1})

    # the list reaches feed, and only feed (and identity, which sends no internal event on)
    delivered = await suite.deliver()
    assert delivered >= 5
    table = outbox_tables.delivery
    async with suite.moderation.state.database.sessionmaker() as session:
        rows = (await session.execute(select(table.c.subscriber, table.c.status))).all()
    subscribers = {r.subscriber for r in rows}
    assert "feed" in subscribers and "groups" not in subscribers
    assert {r.status for r in rows} == {"delivered"}
    async with suite.feed.state.database.sessionmaker() as session:
        sets = {s.context: s.version for s in (await session.scalars(select(HeldTermSet))).all()}
        held = [
            (str(t.id), t.context, t.term, t.match) for t in (await session.scalars(select(HeldTerm))).all()
        ]
    assert sets == {"professional": 4, "personal": 1}
    assert held == [(home.json()["id"], "personal", "spoiler", "word")]


async def test_terms_are_listed_oldest_first_in_pages_and_by_context(suite):
    root, _ = await staff(suite, "root", "admin")
    made = []
    for i, context in enumerate(["professional", "personal", "professional", "professional", "personal"]):
        resp = await add(suite, root, f"term{i}", context=context)
        assert resp.status_code == 201, resp.text
        made.append(resp.json())

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        resp = await suite.client.get(TERMS, params=params, headers=auth(root))
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert 'rel="next"' in resp.headers["link"]
    assert seen == made

    professional = await suite.client.get(
        TERMS, params={"context": "professional", "limit": 2}, headers=auth(root)
    )
    body = professional.json()
    assert [t["term"] for t in body["items"]] == ["term0", "term2"]
    rest = await suite.client.get(
        TERMS,
        params={"context": "professional", "limit": 2, "cursor": body["next_cursor"]},
        headers=auth(root),
    )
    assert [t["term"] for t in rest.json()["items"]] == ["term3"] and rest.json()["next_cursor"] is None

    # a cursor of another list, or none at all, is refused
    for bad in (body["next_cursor"], "garbage"):
        resp = await suite.client.get(
            TERMS, params={"context": "personal", "cursor": bad}, headers=auth(root)
        )
        problem(resp, 400, "bad-cursor")
    problem(
        await suite.client.get(TERMS, params={"context": "public"}, headers=auth(root)), 422, "validation"
    )
    problem(await suite.client.get(TERMS, params={"limit": 101}, headers=auth(root)), 422, "validation")


async def test_a_term_a_context_has_already_is_a_409_in_any_case(suite):
    root, _ = await staff(suite, "root", "admin")
    assert (await add(suite, root, "Leak", "word")).status_code == 201
    before = await stored(suite)
    for term in ("leak", "LEAK", "  Leak  "):
        problem(await add(suite, root, term, "word"), 409, "term-exists")
    assert await stored(suite) == before
    assert len(await terms_events(suite)) == 1
    # the same term with the other match, or in the other context, is another term
    assert (await add(suite, root, "leak", "literal")).status_code == 201
    assert (await add(suite, root, "leak", "word", "personal")).status_code == 201
    assert await stored(suite) == (3, {"professional": 2, "personal": 1})


async def test_a_context_holds_at_most_500_terms(suite):
    root, _ = await staff(suite, "root", "admin")
    async with suite.moderation.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            insert(Term),
            [
                {"id": uuid.uuid4(), "context": "professional", "term": f"seeded{i}", "match": "literal"}
                for i in range(MAX_TERMS - 1)
            ],
        )
    last = await add(suite, root, "the last one")
    assert last.status_code == 201, last.text
    events = await terms_events(suite)
    assert len(events[-1][1]["terms"]) == MAX_TERMS
    problem(await add(suite, root, "one too many"), 409, "too-many-terms")
    assert await stored(suite) == (MAX_TERMS, {"professional": 1})
    assert len(await terms_events(suite)) == 1
    # the other context has room of its own
    assert (await add(suite, root, "one too many", context="personal")).status_code == 201


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"term": " a ", "match": "word", "context": "professional"}, "body.term"),
        ({"term": "x" * 101, "match": "word", "context": "professional"}, "body.term"),
        ({"term": "   ", "match": "word", "context": "professional"}, "body.term"),
        ({"term": "two\nlines", "match": "word", "context": "professional"}, "body.term"),
        ({"term": "nul\u0000", "match": "word", "context": "professional"}, "body.term"),
        ({"term": 12, "match": "word", "context": "professional"}, "body.term"),
        ({"term": "leak", "match": "regex", "context": "professional"}, "body.match"),
        ({"term": "leak", "context": "professional"}, "body.match"),
        ({"term": "leak", "match": "word", "context": "public"}, "body.context"),
        ({"term": "leak", "match": "word"}, "body.context"),
        ({"term": "leak", "match": "word", "context": "personal", "id": "x"}, "body.id"),
    ],
)
async def test_a_malformed_term_is_a_422_and_writes_nothing(suite, body, location):
    root, _ = await staff(suite, "root", "admin")
    resp = await suite.client.post(TERMS, json=body, headers=auth(root))
    errors = problem(resp, 422, "validation")["errors"]
    assert any(e["location"] == location for e in errors), errors
    assert await stored(suite) == (0, {})
    assert await terms_events(suite) == []


async def test_the_longest_and_shortest_terms_are_accepted(suite):
    root, _ = await staff(suite, "root", "admin")
    for term in ("ab", "x" * 100, " " + "y" * 100 + " "):
        resp = await add(suite, root, term)
        assert resp.status_code == 201, resp.text
        assert resp.json()["term"] == term.strip()


async def test_only_an_administrators_professional_token_keeps_the_terms(suite):
    root, root_id = await staff(suite, "root", "admin")
    term = (await add(suite, root, "leak")).json()
    ada = await with_personal(suite.client, "ada")
    moderator, _ = await staff(suite, "mod", "moderator")
    plain, _ = await person(suite.client, "bob")
    root_personal = await with_personal_token(suite, "root@agency.example")
    await staff(suite, "other")  # delivers everything above to moderation
    client = sign(suite.keys.active, claims(None, sub="client-1", ctx=None, client_id="client-1"))
    for token in (ada["pro"], ada["personal"], moderator, plain, root_personal):
        problem(await suite.client.get(TERMS, headers=auth(token)), 403, "not-an-admin")
        problem(await add(suite, token, "secret"), 403, "not-an-admin")
        problem(await suite.client.delete(f"{TERMS}/{term['id']}", headers=auth(token)), 403, "not-an-admin")
    problem(await suite.client.get(TERMS, headers=auth(client)), 403, "forbidden")
    problem(await add(suite, client, "secret"), 403, "forbidden")
    # a notices token is refused even for an administrator's persona
    notices = sign(suite.keys.active, claims(root_id, scope="notices", roles=["admin"]))
    problem(await suite.client.get(TERMS, headers=auth(notices)), 403, "notices-only")
    problem(await suite.client.get(TERMS), 401, "unauthorized")
    assert await stored(suite) == (1, {"professional": 1})
    assert len(await terms_events(suite)) == 1


async def test_parallel_changes_of_one_context_publish_rising_versions_of_growing_lists(suite):
    root, _ = await staff(suite, "root", "admin")
    answers = await asyncio.gather(*(add(suite, root, f"term{i}") for i in range(5)))
    assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
    events = await terms_events(suite)
    assert [data["version"] for _, data in events] == [1, 2, 3, 4, 5]
    assert [len(data["terms"]) for _, data in events] == [1, 2, 3, 4, 5]
    for earlier, later in itertools.pairwise(events):
        assert later[1]["terms"][: len(earlier[1]["terms"])] == earlier[1]["terms"]
    same = await asyncio.gather(*(add(suite, root, "leak") for _ in range(3)))
    assert sorted(a.status_code for a in same) == [201, 409, 409], [a.text for a in same]
    assert await stored(suite) == (6, {"professional": 6})
