"""The code of conduct: anyone signed in reads it, an administrator sets it as versions, and a
change based on a replaced version is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from services.identity.manage import grant_role
from services.moderation import conduct
from services.moderation.models import ConductVersion
from tests.helpers import auth, login, person, register, with_personal
from tests.tokens import claims, sign

CODE = "/api/v1/code-of-conduct"
ADMIN_CODE = "/api/v1/admin/code-of-conduct"
RULES = [
    {"number": 2, "title": "Be kind", "text": "Criticise ideas, not people."},
    {"number": 1, "title": "Stay on topic", "text": "Post where it helps.\nAsk before you share."},
    {"number": 10, "title": "Protect privacy", "text": "Share nobody's personal data."},
]


async def staff(suite: Any, handle: str, *roles: str) -> tuple[str, str]:
    """Someone given ``roles`` the operator's way; returns (professional token, persona id) once
    moderation has heard of the roles."""
    email = await register(suite.client, handle)
    for role in roles:
        assert await grant_role(suite.identity.state.database, email, role, suite.identity.state.outbox)
    tokens = await login(suite.client, email)
    await suite.deliver()
    return tokens["access_token"], tokens["persona_id"]


def problem(resp: Any, status: int, slug: str) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert body["type"].endswith(f"/{slug}"), body
    return body


async def versions(suite: Any) -> int:
    async with suite.moderation.state.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(ConductVersion)) or 0)


async def test_before_the_first_version_anyone_signed_in_reads_version_zero(suite):
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    for token in (ada["pro"], ada["personal"]):
        resp = await suite.client.get(CODE, headers=auth(token))
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"version": 0, "rules": [], "updated_at": None}
    # an integrator's client reads it too
    client = sign(suite.keys.active, claims(None, sub="client-1", ctx=None, client_id="client-1"))
    resp = await suite.client.get(CODE, headers=auth(client))
    assert resp.status_code == 200 and resp.json()["version"] == 0, resp.text
    # a notices token serves a suspended persona's notices, and nothing else
    notices = sign(suite.keys.active, claims(ada["pro_id"], scope="notices"))
    problem(await suite.client.get(CODE, headers=auth(notices)), 403, "notices-only")
    problem(await suite.client.get(CODE), 401, "unauthorized")
    problem(await suite.client.get(CODE, headers=auth("not-a-token")), 401, "unauthorized")
    async with suite.moderation.state.database.sessionmaker() as session:
        assert await conduct.current(session) == (0, [])
        assert await conduct.rule_numbers(session) == (0, frozenset())


async def test_an_administrator_sets_versions_each_based_on_the_one_in_force(suite):
    root, _ = await staff(suite, "root", "admin")
    reader, _ = await person(suite.client, "bob")
    await suite.deliver()

    resp = await suite.client.put(ADMIN_CODE, json={"base_version": 0, "rules": RULES}, headers=auth(root))
    assert resp.status_code == 200, resp.text
    first = resp.json()
    assert first["version"] == 1
    assert [r["number"] for r in first["rules"]] == [1, 2, 10]
    assert first["rules"][0] == RULES[1]
    assert first["updated_at"] is not None
    read = await suite.client.get(CODE, headers=auth(reader))
    assert read.status_code == 200 and read.json() == first

    # an administrator still editing version 0 is told that it was replaced; nothing is written
    stale = await suite.client.put(
        ADMIN_CODE, json={"base_version": 0, "rules": RULES[:1]}, headers=auth(root)
    )
    assert "version 1 is in force" in problem(stale, 409, "stale-version")["detail"]
    future = await suite.client.put(ADMIN_CODE, json={"base_version": 7, "rules": []}, headers=auth(root))
    problem(future, 409, "stale-version")
    assert await versions(suite) == 1
    assert (await suite.client.get(CODE, headers=auth(reader))).json() == first

    second = await suite.client.put(
        ADMIN_CODE, json={"base_version": 1, "rules": RULES[:2]}, headers=auth(root)
    )
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 2
    assert [r["number"] for r in second.json()["rules"]] == [1, 2]
    assert (await suite.client.get(CODE, headers=auth(reader))).json() == second.json()
    async with suite.moderation.state.database.sessionmaker() as session:
        version, rules = await conduct.current(session)
        assert version == 2 and [r.number for r in rules] == [1, 2]
        assert await conduct.rule_numbers(session) == (2, frozenset({1, 2}))

    # every earlier version stays, for the reports that cited it
    assert await versions(suite) == 2


async def test_only_an_administrators_professional_token_sets_it(suite):
    ada = await with_personal(suite.client, "ada")
    moderator, _ = await staff(suite, "mod", "moderator")
    email = await register(suite.client, "root")
    assert await grant_role(suite.identity.state.database, email, "admin", suite.identity.state.outbox)
    root_personal = await with_personal_token(suite, email)
    await suite.deliver()
    body = {"base_version": 0, "rules": RULES}
    for token in (ada["pro"], ada["personal"], moderator, root_personal):
        problem(await suite.client.put(ADMIN_CODE, json=body, headers=auth(token)), 403, "not-an-admin")
    problem(await suite.client.put(ADMIN_CODE, json=body), 401, "unauthorized")
    assert await versions(suite) == 0


async def with_personal_token(suite: Any, email: str) -> str:
    """A personal persona's token for the account of ``email`` (created for the occasion)."""
    pro = await login(suite.client, email)
    resp = await suite.client.post(
        "/api/v1/me/personas",
        json={"handle": "root_home", "display_name": "Root at home"},
        headers=auth(pro["access_token"]),
    )
    assert resp.status_code == 201, resp.text
    token: str = (await login(suite.client, email, persona="personal"))["access_token"]
    return token


def _rule(number: int = 1, **fields: Any) -> dict[str, Any]:
    return {"number": number, "title": "A rule", "text": "What it asks.", **fields}


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"base_version": 0, "rules": [_rule(n) for n in range(1, 102)]}, ["body", "rules"]),
        ({"base_version": 0, "rules": [_rule(3), _rule(3)]}, ["body", "rules"]),
        ({"base_version": 0, "rules": [_rule(0)]}, ["body", "rules", 0, "number"]),
        ({"base_version": 0, "rules": [_rule(-4)]}, ["body", "rules", 0, "number"]),
        ({"base_version": 0, "rules": [_rule(10_001)]}, ["body", "rules", 0, "number"]),
        ({"base_version": 0, "rules": [_rule(title="t" * 201)]}, ["body", "rules", 0, "title"]),
        ({"base_version": 0, "rules": [_rule(title="   ")]}, ["body", "rules", 0, "title"]),
        ({"base_version": 0, "rules": [_rule(title="two\nlines")]}, ["body", "rules", 0, "title"]),
        ({"base_version": 0, "rules": [_rule(text="x" * 4001)]}, ["body", "rules", 0, "text"]),
        ({"base_version": 0, "rules": [_rule(text="")]}, ["body", "rules", 0, "text"]),
        ({"base_version": 0, "rules": [_rule(text="a\u0000b")]}, ["body", "rules", 0, "text"]),
        ({"base_version": 0, "rules": [_rule(extra=1)]}, ["body", "rules", 0, "extra"]),
        ({"base_version": -1, "rules": []}, ["body", "base_version"]),
        ({"base_version": 2**31, "rules": []}, ["body", "base_version"]),
        ({"base_version": False, "rules": []}, ["body", "base_version"]),
        ({"base_version": "0", "rules": []}, ["body", "base_version"]),
        ({"base_version": 0, "rules": [_rule(True)]}, ["body", "rules", 0, "number"]),
        ({"rules": []}, ["body", "base_version"]),
        ({"base_version": 0}, ["body", "rules"]),
        ({"base_version": 0, "rules": "1. Be kind"}, ["body", "rules"]),
    ],
)
async def test_a_malformed_code_is_a_422_and_writes_nothing(suite, body, location):
    root, _ = await staff(suite, "root", "admin")
    resp = await suite.client.put(ADMIN_CODE, json=body, headers=auth(root))
    problem_body = problem(resp, 422, "validation")
    assert any(e["location"] == ".".join(str(p) for p in location) for e in problem_body["errors"]), (
        problem_body
    )
    assert await versions(suite) == 0


async def test_the_largest_code_allowed_is_accepted(suite):
    root, _ = await staff(suite, "root", "admin")
    rules = [_rule(n, title="t" * 200, text="x" * 4000) for n in range(1, 101)]
    resp = await suite.client.put(ADMIN_CODE, json={"base_version": 0, "rules": rules}, headers=auth(root))
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["rules"]) == 100


async def test_two_changes_based_on_the_same_version_one_wins(suite):
    root, _ = await staff(suite, "root", "admin")
    other, _ = await staff(suite, "root2", "admin")
    answers = await asyncio.gather(
        *(
            suite.client.put(ADMIN_CODE, json={"base_version": 0, "rules": [_rule(n)]}, headers=auth(token))
            for n, token in ((1, root), (2, other))
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    problem(loser, 409, "stale-version")
    assert await versions(suite) == 1
