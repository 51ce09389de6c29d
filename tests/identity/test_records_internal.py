"""Identity's answers to records (decision 0033): the personas of the accounts a matter names,
resolved and audited with the officer, the matter and the reason; and the personas a persona's
own export covers. Both behind the internal token only."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from kit.ids import new_id
from services.identity.models import AuditEntry, Persona
from tests.helpers import admin, auth, login, make_role, person, register, with_personal

CUSTODIANS = "http://identity/internal/records/custodians"
OWNERS = "http://identity/internal/records/owners"
REASON = "Discovery order 2026-114: the messages of the procurement team."
PROFILE_FIELDS = {
    "id",
    "context",
    "handle",
    "display_name",
    "job_title",
    "department",
    "location",
    "bio",
    "pronouns",
    "skills",
    "interests",
    "discoverable",
    "status",
}


def _internal(suite) -> dict[str, str]:
    return auth(suite.identity.state.settings.internal_token.get_secret_value())


async def _account_id(suite, pro_token: str) -> str:
    account_id: str = (await suite.client.get("/api/v1/me", headers=auth(pro_token))).json()["account_id"]
    return account_id


async def _officer(suite) -> str:
    """A records officer's professional persona id."""
    email = await register(suite.client, "rita")
    await make_role(suite, email, "records")
    officer_id: str = (await login(suite.client, email))["persona_id"]
    return officer_id


def _body(account_ids: list[str], officer_id: str, **more: Any) -> dict[str, Any]:
    return {
        "account_ids": account_ids,
        "matter_id": str(new_id()),
        "officer_id": officer_id,
        "reason": REASON,
        "purpose": "hold",
        **more,
    }


async def _audit(suite) -> list[AuditEntry]:
    async with suite.identity.state.database.sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.action == "records.custodians.resolved")
                    .order_by(AuditEntry.id)
                )
            ).all()
        )


async def _audit_count(suite) -> int:
    async with suite.identity.state.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


# ----------------------------------------------------------------------------- custodians


async def test_custodians_are_each_accounts_personas_with_their_profiles(suite):
    root, _ = await admin(suite)
    officer_id = await _officer(suite)
    ada = await with_personal(suite.client, "ada", bio="Weekend sailor.", interests=["sailing"])
    resp = await suite.client.patch(
        f"/api/v1/personas/{ada['pro_id']}",
        json={"job_title": "Buyer", "department": "Procurement", "location": "Ottawa", "skills": ["tenders"]},
        headers=auth(ada["pro"]),
    )
    assert resp.status_code == 200, resp.text
    bob, bob_id = await person(suite.client, "bob")  # no personal persona
    ada_account, bob_account = await _account_id(suite, ada["pro"]), await _account_id(suite, bob)
    stranger = str(uuid.uuid4())

    body = _body([bob_account, stranger, ada_account, bob_account], officer_id, purpose="export")
    resp = await suite.client.post(CUSTODIANS, json=body, headers=_internal(suite))
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["unknown"] == [stranger]
    # in the order asked, each account once
    assert [c["account_id"] for c in answer["custodians"]] == [bob_account, ada_account]
    bob_personas, ada_personas = (c["personas"] for c in answer["custodians"])
    assert [p["id"] for p in bob_personas] == [bob_id]
    assert [(p["id"], p["context"]) for p in ada_personas] == [
        (ada["pro_id"], "professional"),
        (ada["personal_id"], "personal"),
    ]
    pro, personal = ada_personas
    assert set(pro) == set(personal) == PROFILE_FIELDS
    assert {k: pro[k] for k in ("job_title", "department", "location", "skills", "status")} == {
        "job_title": "Buyer",
        "department": "Procurement",
        "location": "Ottawa",
        "skills": ["tenders"],
        "status": "active",
    }
    assert (personal["handle"], personal["bio"], personal["interests"]) == (
        "ada_home",
        "Weekend sailor.",
        ["sailing"],
    )

    # one audit entry, committed with the answer, that administrators read in the log
    log = (await suite.client.get("/api/v1/admin/audit", headers=auth(root))).json()["items"]
    entry = next(e for e in log if e["action"] == "records.custodians.resolved")
    assert entry["actor"] == officer_id
    assert entry["reason"] == REASON
    assert entry["account_id"] is None
    assert entry["details"] == {
        "matter_id": body["matter_id"],
        "purpose": "export",
        "account_ids": [bob_account, ada_account],
    }
    assert len(await _audit(suite)) == 1


async def test_accounts_identity_does_not_know_are_listed_apart_and_not_audited(suite):
    officer_id = await _officer(suite)
    strangers = [str(uuid.uuid4()), str(uuid.uuid4())]
    before = await _audit_count(suite)

    resp = await suite.client.post(CUSTODIANS, json=_body(strangers, officer_id), headers=_internal(suite))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"custodians": [], "unknown": strangers}
    assert await _audit_count(suite) == before


async def test_an_erased_personal_persona_is_left_out(suite):
    officer_id = await _officer(suite)
    ada = await with_personal(suite.client, "ada")
    resp = await suite.client.delete("/api/v1/me/personas/personal", headers=auth(ada["pro"]))
    assert resp.status_code == 204, resp.text

    body = _body([await _account_id(suite, ada["pro"])], officer_id)
    resp = await suite.client.post(CUSTODIANS, json=body, headers=_internal(suite))
    assert resp.status_code == 200, resp.text
    [custodian] = resp.json()["custodians"]
    assert [p["id"] for p in custodian["personas"]] == [ada["pro_id"]]


async def test_an_officer_that_is_no_professional_persona_is_never_the_actor(suite):
    """Roles act through the professional persona: a personal persona named as the officer
    would tie it to the role, so the entry is records' own."""
    ada = await with_personal(suite.client, "ada")
    bob, _ = await person(suite.client, "bob")
    body = _body([await _account_id(suite, bob)], ada["personal_id"])

    resp = await suite.client.post(CUSTODIANS, json=body, headers=_internal(suite))
    assert resp.status_code == 200, resp.text
    [entry] = await _audit(suite)
    assert entry.actor == "records"
    assert ada["personal_id"] not in str((entry.actor, entry.details, entry.reason))


async def test_custodians_need_the_internal_token(suite):
    officer_id = await _officer(suite)
    bob, _ = await person(suite.client, "bob")
    body = _body([await _account_id(suite, bob)], officer_id)
    before = await _audit_count(suite)

    for headers in ({}, auth("not-the-token"), auth(bob)):
        resp = await suite.client.post(CUSTODIANS, json=body, headers=headers)
        assert resp.status_code == 401, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert await _audit_count(suite) == before
    # and the gateway does not lead there at all
    resp = await suite.client.post("/internal/records/custodians", json=body, headers=_internal(suite))
    assert resp.status_code == 404
    assert await _audit_count(suite) == before


async def test_a_malformed_request_is_a_422_problem_and_writes_nothing(suite):
    officer_id = await _officer(suite)
    bob, _ = await person(suite.client, "bob")
    account = await _account_id(suite, bob)
    good = _body([account], officer_id)
    without_reason = {k: v for k, v in good.items() if k != "reason"}
    before = await _audit_count(suite)

    for body in (
        {**good, "account_ids": []},
        {**good, "account_ids": [str(uuid.uuid4()) for _ in range(101)]},
        {**good, "account_ids": ["not-an-id"]},
        without_reason,
        {**good, "reason": ""},
        {**good, "reason": "   "},
        {**good, "reason": "x" * 2001},
        {**good, "purpose": "curiosity"},
        {**good, "matter_id": None},
        {**good, "officer_id": "me"},
        {**good, "extra": 1},
    ):
        resp = await suite.client.post(CUSTODIANS, json=body, headers=_internal(suite))
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert await _audit_count(suite) == before

    # the bounds themselves are accepted
    resp = await suite.client.post(
        CUSTODIANS,
        json={
            **good,
            "account_ids": [account, *(str(uuid.uuid4()) for _ in range(99))],
            "reason": "x" * 2000,
        },
        headers=_internal(suite),
    )
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["unknown"]) == 99


# ----------------------------------------------------------------------------- owners


async def test_a_persona_s_own_export_covers_its_owners_personas_by_its_kind(suite):
    ada = await with_personal(suite.client, "ada")
    _, bob_id = await person(suite.client, "bob")
    before = await _audit_count(suite)

    resp = await suite.client.get(f"{OWNERS}/{ada['pro_id']}", headers=_internal(suite))
    assert resp.status_code == 200, resp.text
    personas = resp.json()["personas"]
    assert [(p["id"], p["context"]) for p in personas] == [
        (ada["pro_id"], "professional"),
        (ada["personal_id"], "personal"),
    ]
    assert all(set(p) == PROFILE_FIELDS for p in personas)

    # from the personal persona, itself alone: its token must not reach its twin
    resp = await suite.client.get(f"{OWNERS}/{ada['personal_id']}", headers=_internal(suite))
    assert resp.status_code == 200, resp.text
    assert [p["id"] for p in resp.json()["personas"]] == [ada["personal_id"]]
    assert ada["pro_id"] not in resp.text

    resp = await suite.client.get(f"{OWNERS}/{bob_id}", headers=_internal(suite))
    assert [p["id"] for p in resp.json()["personas"]] == [bob_id]
    # the owner's own export: nothing audited
    assert await _audit_count(suite) == before


async def test_owners_of_an_unknown_persona_is_a_404_and_needs_the_token(suite):
    ada = await with_personal(suite.client, "ada")

    resp = await suite.client.get(f"{OWNERS}/{uuid.uuid4()}", headers=_internal(suite))
    assert resp.status_code == 404, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    resp = await suite.client.get(f"{OWNERS}/not-an-id", headers=_internal(suite))
    assert resp.status_code == 422, resp.text
    for headers in ({}, auth(ada["pro"])):
        resp = await suite.client.get(f"{OWNERS}/{ada['pro_id']}", headers=headers)
        assert resp.status_code == 401, resp.text


async def test_the_status_shown_is_the_persona_s_own(suite):
    """A persona held by moderation shows as suspended, its twin as it is."""
    ada = await with_personal(suite.client, "ada")
    async with suite.identity.state.database.sessionmaker() as session:
        persona = await session.get(Persona, uuid.UUID(ada["pro_id"]))
        assert persona is not None
        persona.moderation_hold = True
        await session.commit()

    resp = await suite.client.get(f"{OWNERS}/{ada['pro_id']}", headers=_internal(suite))
    assert [(p["context"], p["status"]) for p in resp.json()["personas"]] == [
        ("professional", "suspended"),
        ("personal", "active"),
    ]


async def test_the_internal_routes_are_not_published(suite):
    schema = suite.identity.openapi()
    assert not [path for path in schema["paths"] if path.startswith("/internal")]
