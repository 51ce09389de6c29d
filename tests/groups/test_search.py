"""Searching groups (services/groups/search.py), on SQLite and PostgreSQL alike: stemmed words
in English and French, tags, the fields' weights, the directory's visibility and contexts, an
index that follows every change in its own transaction, pages, the language of a group, and
queries that are refused rather than failing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import text, update

from domain.principal import Principal
from kit import search as kit_search
from kit.pagination import encode_cursor
from services.groups import search
from services.groups.models import Group
from tests.groups.support import GROUPS, people, problem
from tests.helpers import admin, auth, create_group, with_personal

SEARCH = "/api/v1/search/groups"  # the gateway routes it to groups


async def find(suite: Any, token: str, q: str, **params: Any) -> list[dict[str, Any]]:
    """Every group the search finds, following the cursors."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"q": q, "limit": 100, **params, **({"cursor": cursor} if cursor else {})}
        resp = await suite.client.get(SEARCH, params=query, headers=auth(token))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        found += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return found


async def handles(suite: Any, token: str, q: str, **params: Any) -> list[str]:
    return [g["handle"] for g in await find(suite, token, q, **params)]


def principal(persona_id: str, context: str = "professional") -> Principal:
    now = time.time()
    return Principal(
        subject=persona_id,
        persona_id=uuid.UUID(persona_id),
        context=context,
        scopes=frozenset(),
        roles=frozenset(),
        token_id="search",
        issued_at=now,
        expires_at=now + 60,
    )


async def test_a_stemmed_word_of_the_purpose_finds_its_group_in_english_and_french(suite):
    p = await people(suite, "ada", "bob")
    ada, bob = p["ada"][0], p["bob"][0]
    english = await create_group(
        suite.client, ada, "moving", purpose="Planning the migrations of our services to the cloud."
    )
    french = await create_group(
        suite.client,
        ada,
        "movers",
        purpose="Nous préparons les déménagements de nos équipes avec le service des bâtiments.",
    )
    declared = await create_group(
        suite.client, ada, "minutes", purpose="Réunions mensuelles, comptes rendus, décisions.", lang="fr-ca"
    )
    assert (english["lang"], french["lang"], declared["lang"]) == ("en", "fr", "fr-CA")

    assert await handles(suite, bob, "migrate") == ["moving"]
    assert await handles(suite, bob, "MIGRATING") == ["moving"]
    assert await handles(suite, bob, "déménagement") == ["movers"]
    assert await handles(suite, bob, "demenagement") == ["movers"]  # without its accents
    assert await handles(suite, bob, "réunion") == ["minutes"]
    assert await handles(suite, bob, "reunion decision") == ["minutes"]
    assert await handles(suite, bob, "migrate déménagement") == []  # every word must match
    assert sorted(await handles(suite, bob, "migrate OR déménagement")) == ["movers", "moving"]

    [hit] = await find(suite, bob, "déménagement")
    assert hit["highlight"] == (
        "Nous préparons les <mark>déménagements</mark> de nos équipes avec le service des bâtiments."
    )
    assert {k: v for k, v in hit.items() if k != "highlight"} == {**french, "my_role": None}


async def test_a_tag_finds_its_group_and_tag_filters_keep_its_groups(suite):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    await create_group(
        suite.client,
        ada,
        "infra",
        purpose="Share infrastructure notes with the team.",
        tags=["Kubernetes", "réseau"],
    )
    await create_group(suite.client, ada, "curious", purpose="Kubernetes notes for the curious team.")
    assert sorted(await handles(suite, ada, "kubernetes")) == ["curious", "infra"]
    assert await handles(suite, ada, "reseau") == ["infra"]
    assert await handles(suite, ada, "notes tag:kubernetes") == ["infra"]
    assert await handles(suite, ada, "notes #réseau") == ["infra"]
    assert await handles(suite, ada, "notes tag:missing") == []
    [hit] = await find(suite, ada, "réseau")
    assert hit["highlight"] == "kubernetes <mark>réseau</mark>"
    # Only a filter: nothing to find, an empty page.
    assert await handles(suite, ada, "#kubernetes") == []
    # Filters of other kinds of search are ignored.
    assert sorted(await handles(suite, ada, "notes author:ada group:infra")) == ["curious", "infra"]


async def test_a_match_in_the_name_ranks_above_the_purpose_the_tags_and_the_charter(suite):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    # Created from the best match to the worst, so the newest is the one that should rank last.
    await create_group(
        suite.client, ada, "office", name="Budget office", purpose="Where the money is decided."
    )
    await create_group(suite.client, ada, "plan", name="Planning", purpose="Prepare the budget of next year.")
    await create_group(
        suite.client,
        ada,
        "receipts",
        name="Receipts",
        purpose="Share receipts with finance.",
        tags=["budget"],
    )
    await create_group(
        suite.client,
        ada,
        "review",
        name="Quarterly review",
        purpose="Track the spending of the teams.",
        charter={"objective": "Keep the budget under control."},
    )
    assert await handles(suite, ada, "budget") == ["office", "plan", "receipts", "review"]
    # the first line of each highlight: the charter's audience follows its objective
    assert [g["highlight"].splitlines()[0] for g in await find(suite, ada, "budget")] == [
        "<mark>Budget</mark> office",
        "Prepare the <mark>budget</mark> of next year.",
        "<mark>budget</mark>",
        "Keep the <mark>budget</mark> under control.",
    ]


async def test_secret_groups_are_found_by_their_members_only(suite):
    root, _ = await admin(suite)
    p = await people(suite, "ada", "bob", "eve")
    ada, bob, eve = p["ada"][0], p["bob"], p["eve"]
    secret = await create_group(suite.client, ada, "cell", name="Budget cell", visibility="secret")
    await create_group(suite.client, ada, "open", name="Budget open")
    invited = await suite.client.post(
        f"{GROUPS}/{secret['id']}/invitations", json={"persona_id": eve[1]}, headers=auth(ada)
    )
    assert invited.status_code == 201, invited.text
    # Neither an outsider nor an invitee: one match, and no page that would tell of another.
    for token in (bob[0], eve[0]):
        resp = await suite.client.get(SEARCH, params={"q": "budget", "limit": 1}, headers=auth(token))
        assert [g["handle"] for g in resp.json()["items"]] == ["open"]
        assert resp.json()["next_cursor"] is None and "link" not in resp.headers
        assert await handles(suite, token, "cell") == []
    assert sorted(await handles(suite, ada, "budget")) == ["cell", "open"]
    assert sorted(await handles(suite, root, "budget")) == ["cell", "open"]
    [hit] = await find(suite, ada, "cell")
    assert hit["my_role"] == "owner" and hit["visibility"] == "secret"


async def test_the_search_shows_exactly_the_groups_the_directory_shows(suite):
    """Every kind of group, every kind of caller: the search finds the groups the directory
    lists for the same words, archived or not."""
    root, _ = await admin(suite)
    p = await people(suite, "ada", "bob", "eve")
    ada, bob = p["ada"][0], p["bob"]
    purpose = "Coordinate the budget work together."
    made = {}
    for handle, visibility in [
        ("open", "open"),
        ("closed", "closed"),
        ("secretbob", "secret"),
        ("secretnobob", "secret"),
        ("archivedopen", "open"),
        ("archivedsecret", "secret"),
        ("hidden", "open"),
        ("removed", "open"),
    ]:
        made[handle] = await create_group(suite.client, ada, handle, purpose=purpose, visibility=visibility)
    for handle in ("secretbob", "archivedsecret"):
        owner_invites = await suite.client.post(
            f"{GROUPS}/{made[handle]['id']}/invitations", json={"persona_id": bob[1]}, headers=auth(ada)
        )
        assert owner_invites.status_code == 201, owner_invites.text
        accepted = await suite.client.post(
            f"{GROUPS}/{made[handle]['id']}/invitations/{bob[1]}/accept", headers=auth(bob[0])
        )
        assert accepted.status_code == 201, accepted.text
    for handle in ("archivedopen", "archivedsecret"):
        archived = await suite.client.delete(f"{GROUPS}/{made[handle]['id']}", headers=auth(ada))
        assert archived.status_code == 204
    async with suite.groups.state.database.sessionmaker() as session, session.begin():
        for handle in ("hidden", "removed"):
            await session.execute(
                update(Group).where(Group.id == uuid.UUID(made[handle]["id"])).values(moderation=handle)  # type: ignore[arg-type]
            )
    others = await with_personal(suite.client, "cyd")
    await suite.deliver()
    await create_group(suite.client, others["personal"], "elsewhere", purpose=purpose)

    for token in (ada, bob[0], p["eve"][0], root, others["pro"], others["personal"]):
        for archived in (False, True):
            listed = await suite.client.get(
                GROUPS, params={"q": "budget", "archived": archived, "limit": 100}, headers=auth(token)
            )
            assert listed.status_code == 200, listed.text
            directory = {(g["id"], g["my_role"]) for g in listed.json()["items"]}
            found = {(g["id"], g["my_role"]) for g in await find(suite, token, "budget", archived=archived)}
            assert found == directory
    assert sorted(await handles(suite, ada, "budget")) == [
        "closed",
        "hidden",
        "open",
        "secretbob",
        "secretnobob",
    ]
    assert sorted(await handles(suite, bob[0], "budget")) == ["closed", "open", "secretbob"]
    assert sorted(await handles(suite, bob[0], "budget", archived=True)) == ["archivedopen", "archivedsecret"]
    assert sorted(await handles(suite, p["eve"][0], "budget")) == ["closed", "open"]
    assert await handles(suite, others["personal"], "budget") == ["elsewhere"]


async def test_a_search_never_finds_a_group_of_the_other_context(suite):
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    await create_group(
        suite.client,
        ada["personal"],
        "garden",
        purpose="Growing tomatoes on our balconies, with the neighbours.",
    )
    await create_group(suite.client, ada["pro"], "canteen", purpose="Tomatoes in the canteen, every Friday.")
    assert await handles(suite, ada["pro"], "tomato") == ["canteen"]
    assert await handles(suite, ada["personal"], "tomato") == ["garden"]
    assert await handles(suite, ada["pro"], "balconies") == []
    assert await handles(suite, ada["personal"], "canteen") == []


async def test_the_index_follows_every_change_in_its_own_transaction(suite):
    root, _ = await admin(suite)
    p = await people(suite, "ada")
    ada, ada_id = p["ada"]
    group = await create_group(
        suite.client, ada, "cloud", name="Cloud move", purpose="Together we move the services."
    )
    gid = group["id"]
    assert await handles(suite, ada, "cloud") == ["cloud"]

    changed = await suite.client.patch(
        f"{GROUPS}/{gid}",
        json={
            "name": "Data lake",
            "tags": ["warehouse"],
            "charter": {
                "objective": "Every report reads one lake.",
                "success_indicators": ["Fewer spreadsheets"],
            },
        },
        headers=auth(ada),
    )
    assert changed.status_code == 200, changed.text
    assert await handles(suite, ada, "move") == ["cloud"]  # the handle stays, and the purpose
    assert await handles(suite, ada, '"cloud move"') == []
    assert await handles(suite, ada, "lake warehouse report spreadsheet") == ["cloud"]

    assert (await suite.client.delete(f"{GROUPS}/{gid}", headers=auth(ada))).status_code == 204
    assert await handles(suite, ada, "lake") == []
    assert await handles(suite, ada, "lake", archived=True) == ["cloud"]
    assert (await suite.client.post(f"{GROUPS}/{gid}/restore", headers=auth(ada))).status_code == 200
    assert await handles(suite, ada, "lake") == ["cloud"]

    # Within one transaction: the change is found before the commit, and gone with a rollback.
    state = suite.groups.state
    query = kit_search.parse("ocean")
    async with state.database.sessionmaker() as session:
        row = await session.get(Group, uuid.UUID(gid))
        assert row is not None
        row.name = "Ocean"
        await session.flush()
        results = await search.search_groups(
            session, principal(ada_id), query, archived=False, position=kit_search.Position(), limit=5
        )
        assert [f.group.handle for f in results.found] == ["cloud"]
        await session.rollback()
    assert await handles(suite, ada, "ocean") == []
    assert await handles(suite, ada, "lake") == ["cloud"]

    deleted = await suite.client.delete(f"{GROUPS}/{gid}", params={"hard": "true"}, headers=auth(root))
    assert deleted.status_code == 204, deleted.text
    assert await handles(suite, root, "lake") == []
    assert await handles(suite, root, "lake", archived=True) == []
    if not state.database.is_postgres:
        async with state.database.sessionmaker() as session:
            left = await session.scalar(text("SELECT count(*) FROM group_search"))
        assert left == 0


async def test_pages_cover_every_match_once_ranked_then_older(suite, monkeypatch):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    ids = [
        (
            await create_group(
                suite.client, ada, f"team{i:02}", purpose=f"Budget team number {i} of the agency."
            )
        )["id"]
        for i in range(23)
    ]
    await create_group(suite.client, ada, "other", purpose="Nothing to do with money at all.")
    newest_first = sorted(ids, reverse=True)

    async def pages(limit: int) -> list[list[str]]:
        out: list[list[str]] = []
        cursor = None
        while True:
            params = {"q": "budget", "limit": limit, **({"cursor": cursor} if cursor else {})}
            resp = await suite.client.get(SEARCH, params=params, headers=auth(ada))
            assert resp.status_code == 200, resp.text
            out.append([g["id"] for g in resp.json()["items"]])
            cursor = resp.json()["next_cursor"]
            if cursor is None:
                assert "link" not in resp.headers
                return out
            assert f"cursor={cursor}" in resp.headers["link"]

    # Equal matches: the newer first, page after page.
    assert [len(page) for page in await pages(10)] == [10, 10, 3]
    assert [g for page in await pages(10) for g in page] == newest_first
    # Fewer candidates than matches: ranked first, then the older ones in id order.
    monkeypatch.setattr(search, "CANDIDATES", 7)
    for limit in (1, 3, 5, 7, 100):
        assert [g for page in await pages(limit) for g in page] == newest_first, limit

    first = await suite.client.get(SEARCH, params={"q": "budget", "limit": 3}, headers=auth(ada))
    cursor = first.json()["next_cursor"]
    scope = kit_search.cursor_scope("groups", kit_search.parse("budget"))
    forged = [encode_cursor(scope, key) for key in (["", 1001, ""], ["x", 0, ""], ["", 0, "x"], ["", -1, ""])]
    wrong = [("money", cursor), ("budget", "not-a-cursor"), ("budget", cursor[:-2] + "xx")]
    for q, bad in [*wrong, *(("budget", f) for f in forged)]:
        resp = await suite.client.get(SEARCH, params={"q": q, "cursor": bad}, headers=auth(ada))
        assert problem(resp, 400)["type"].endswith("/bad-cursor"), resp.text


@pytest.mark.parametrize(
    ("q", "slug"),
    [
        ("a" * 257, "query-too-long"),
        (" ".join(f"word{i}" for i in range(17)), "too-many-terms"),
        ("x" * 65, "word-too-long"),
        ("budget has:image", "unsupported-filter"),
        ("since:2026-02-30 budget", "invalid-query"),
        ("budget\x01", "invalid-query"),
    ],
)
async def test_a_query_that_cannot_be_one_is_a_422(suite, q, slug):
    p = await people(suite, "ada")
    resp = await suite.client.get(SEARCH, params={"q": q}, headers=auth(p["ada"][0]))
    assert problem(resp, 422)["type"].endswith(f"/{slug}"), resp.text


HOSTILE = [
    "",
    " ",
    '"',
    '""',
    '"budget',
    "-",
    "--budget",
    "-budget",
    "OR",
    "OR OR budget",
    "budget OR",
    "AND NOT budget",
    "budget NOT team",
    "*",
    "budget*",
    "^budget",
    "NEAR(budget team)",
    "stems : budget",
    "words:budget",
    "{name_words purpose_words} : budget",
    "name_stems:budget",
    "group_search:budget",
    "budget:*",
    "'budget' & !team | (x <-> y)",
    "@@ ::tsquery",
    "a:b:c",
    "%_\\",
    '\'; DROP TABLE "group"; --',
    "日本語 チーム",
    "🙂 budget",
    "tag:",
    "#",
    "tag:a'b budget",
    'tag:"x" budget',
    "tag:-- budget",
    "author:@ budget",
    "since:2026-01-01 until:2025-01-01 budget",
    "the of and",
    "le la les",
    "x" * 64,
    " ".join(["budget"] * 16),
    " OR ".join(f"w{i}" for i in range(16)),
    "\u00a0budget\u2028",
    "\ufeffbudget",
]


async def test_no_query_fails(suite):
    """Whatever ``q`` holds, the answer is a page or a 4xx problem, never a 500 (the
    ``no_unexpected_errors`` fixture fails on any logged 5xx)."""
    p = await people(suite, "ada")
    ada = p["ada"][0]
    await create_group(suite.client, ada, "team", purpose="Budget team of the agency.", tags=["budget"])
    for q in HOSTILE:
        resp = await suite.client.get(SEARCH, params={"q": q}, headers=auth(ada))
        assert resp.status_code in (200, 422), (q, resp.status_code, resp.text)
        if resp.status_code == 422:
            problem(resp, 422)
    for params in ({}, {"q": "budget", "limit": 0}, {"q": "budget", "limit": 101}, {"q": "a\x00b"}):
        problem(await suite.client.get(SEARCH, params=params, headers=auth(ada)), 422)
    problem(await suite.client.get(SEARCH, params={"q": "budget"}), 401)


async def test_a_groups_language_is_declared_checked_or_detected(suite):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    base = {"name": "Lang", "handle": "lang", "purpose": "Keep the notes of the team together."}
    for lang in ("not a tag", "e", "en_GB", "x" * 36):
        resp = await suite.client.post(GROUPS, json={**base, "lang": lang}, headers=auth(ada))
        problem(resp, 422)
    group = await create_group(suite.client, ada, "lang", purpose=base["purpose"], lang="EN-gb")
    gid = group["id"]
    assert group["lang"] == "en-GB"

    async def patched(body: dict[str, Any]) -> str | None:
        resp = await suite.client.patch(f"{GROUPS}/{gid}", json=body, headers=auth(ada))
        assert resp.status_code == 200, resp.text
        got = await suite.client.get(f"{GROUPS}/{gid}", headers=auth(ada))
        assert got.json()["lang"] == resp.json()["lang"]
        lang: str | None = resp.json()["lang"]
        return lang

    # English text again: the declared variant stays.
    assert await patched({"purpose": "Write down the decisions of the team."}) == "en-GB"
    # French text: detected, and the search stems it in French from then on.
    assert await patched({"purpose": "Nous gardons les notes de nos réunions pour les absents."}) == "fr"
    assert await handles(suite, ada, "réunion") == ["lang"]
    # A text detection is unsure of keeps the language.
    assert await patched({"purpose": "Notes, minutes, décisions."}) == "fr"
    assert await patched({"lang": "de"}) == "de"
    assert await patched({"lang": None}) is None  # detected again: unsure
    assert await patched({"lang": None, "purpose": "Write down the decisions of the team."}) == "en"
    problem(await suite.client.patch(f"{GROUPS}/{gid}", json={"lang": "??"}, headers=auth(ada)), 422)
