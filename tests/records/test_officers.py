"""Who reaches the records API (records officers and administrators, through their
professional persona, while identity says they hold the role), and the audit log every call
writes, reads included."""

from __future__ import annotations

import uuid

from services.records.models import AuditEntry, StaffReplica
from tests.helpers import auth, person, unique, with_personal
from tests.records.support import (
    AUDIT,
    DISPOSITIONS,
    MATTERS,
    POLICIES,
    account_of,
    matter,
    officer,
    problem,
    rows,
)
from tests.tokens import claims, sign

READS = (POLICIES, MATTERS, DISPOSITIONS, AUDIT)


async def test_the_records_api_is_for_officers_and_administrators(suite):
    nobody, nobody_id = await person(suite.client, unique("ann"))
    await suite.deliver()
    for path in READS:
        problem(await suite.client.get(path, headers=auth(nobody)), 403, "not-an-officer")
    problem(await suite.client.post(DISPOSITIONS, headers=auth(nobody)), 403, "not-an-officer")
    problem(
        await suite.client.post(
            MATTERS, json={"name": "x", "reference": "y", "reason": "z"}, headers=auth(nobody)
        ),
        403,
        "not-an-officer",
    )
    # a role in the token that records' replica does not hold
    claimed = sign(suite.keys.active, claims(nobody_id, roles=["records", "admin"]))
    problem(await suite.client.get(POLICIES, headers=auth(claimed)), 403, "not-an-officer")
    # a moderator is no records officer
    moderator, _ = await officer(suite, "mod", role="moderator")
    problem(await suite.client.get(POLICIES, headers=auth(moderator)), 403, "not-an-officer")
    client = sign(suite.keys.active, claims(None, sub="client-1", ctx=None, client_id="client-1"))
    problem(await suite.client.get(POLICIES, headers=auth(client)), 403)
    assert not await rows(suite, AuditEntry)

    for role in ("records", "admin"):
        token, officer_id = await officer(suite, role, role=role)
        (replica,) = await rows(suite, StaffReplica, persona_id=uuid.UUID(officer_id))
        assert replica.roles == [role]
        for path in READS:
            resp = await suite.client.get(path, headers=auth(token))
            assert resp.status_code == 200, (path, resp.text)


async def test_an_officers_personal_persona_is_no_officer(suite):
    twin = await with_personal(suite.client, unique("rita"))
    from services.identity.manage import grant_role

    assert await grant_role(
        suite.identity.state.database, twin["email"], "records", suite.identity.state.outbox
    )
    await suite.deliver()
    problem(await suite.client.get(POLICIES, headers=auth(twin["personal"])), 403, "not-an-officer")
    personal = sign(suite.keys.active, claims(twin["personal_id"], ctx="personal", roles=["records"]))
    problem(await suite.client.get(POLICIES, headers=auth(personal)), 403, "not-an-officer")
    # the professional persona, with a token issued after the grant, is an officer
    from tests.helpers import login

    pro = await login(suite.client, twin["email"])
    assert (await suite.client.get(POLICIES, headers=auth(pro["access_token"]))).status_code == 200


async def test_a_role_removed_at_identity_is_gone_at_the_next_request(suite):
    root, _ = await officer(suite, "root", role="admin")
    token, officer_id = await officer(suite)
    assert (await suite.client.get(POLICIES, headers=auth(token))).status_code == 200
    account = await account_of(suite, officer_id)
    changed = await suite.client.patch(
        f"/api/v1/admin/accounts/{account}",
        json={"roles": [], "reason": "Moved to another team."},
        headers=auth(root),
    )
    assert changed.status_code == 200, changed.text
    await suite.deliver()
    # the same token, still claiming the role
    problem(await suite.client.get(POLICIES, headers=auth(token)), 403, "not-an-officer")
    assert not await rows(suite, StaffReplica, persona_id=uuid.UUID(officer_id))


async def test_every_call_is_audited_with_its_officer_and_matter(suite):
    token, officer_id = await officer(suite)
    other, _ = await officer(suite, "rob")
    case = await matter(suite, token)
    for path in (POLICIES, MATTERS, f"{MATTERS}/{case['id']}", f"{MATTERS}/{case['id']}/holds", DISPOSITIONS):
        assert (await suite.client.get(path, headers=auth(token))).status_code == 200, path
    assert (await suite.client.get(f"{MATTERS}/{uuid.uuid4()}", headers=auth(token))).status_code == 404
    entries = sorted(await rows(suite, AuditEntry), key=lambda e: e.id)
    assert [(e.action, e.officer_id, e.matter_id) for e in entries] == [
        ("matter.created", uuid.UUID(officer_id), uuid.UUID(case["id"])),
        ("policies.read", uuid.UUID(officer_id), None),
        ("matters.listed", uuid.UUID(officer_id), None),
        ("matter.read", uuid.UUID(officer_id), uuid.UUID(case["id"])),
        ("holds.listed", uuid.UUID(officer_id), uuid.UUID(case["id"])),
        ("dispositions.listed", uuid.UUID(officer_id), None),
    ]

    # the log, newest first, by matter and by action, each read itself an entry
    resp = await suite.client.get(AUDIT, params={"matter_id": case["id"]}, headers=auth(other))
    assert resp.status_code == 200, resp.text
    assert [e["action"] for e in resp.json()["items"]] == ["holds.listed", "matter.read", "matter.created"]
    first = resp.json()["items"][-1]
    assert first["officer_id"] == officer_id and first["details"] == {"reference": case["reference"]}
    resp = await suite.client.get(AUDIT, params={"action": "audit.read"}, headers=auth(token))
    (read,) = resp.json()["items"]
    assert read["matter_id"] == case["id"] and read["officer_id"] != officer_id
    page = await suite.client.get(AUDIT, params={"limit": 3}, headers=auth(token))
    assert len(page.json()["items"]) == 3 and page.headers["link"].endswith('rel="next"')
    cursor = page.json()["next_cursor"]
    rest = await suite.client.get(AUDIT, params={"limit": 100, "cursor": cursor}, headers=auth(token))
    seen = [e["id"] for e in page.json()["items"] + rest.json()["items"]]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert len(seen) == len(await rows(suite, AuditEntry)) - 2  # all but the two pages' own reads
    for bad in ({"cursor": "nonsense"}, {"cursor": cursor, "action": "matter.read"}):
        problem(await suite.client.get(AUDIT, params=bad, headers=auth(token)), 400, "bad-cursor")
    for bad in ({"limit": 0}, {"matter_id": "x"}, {"action": "DROP TABLE"}):
        problem(await suite.client.get(AUDIT, params=bad, headers=auth(token)), 422, "validation")
