"""Matters and legal holds: opening, listing and closing matters; placing a hold whose
custodians identity resolves (and audits), what a hold may not be, overlapping holds,
releasing one, and what a closed matter refuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from services.identity.models import AuditEntry as IdentityAuditEntry
from services.records.models import AuditEntry, Hold, HoldGroup, HoldPersona, HoldTerm, Matter
from tests.helpers import auth, person, unique, with_personal
from tests.records.support import (
    MATTERS,
    account_of,
    hold,
    matter,
    officer,
    place,
    problem,
    release,
    rows,
)

NOW = datetime.now(UTC)


async def test_a_matter_is_opened_with_a_unique_reference_and_listed_newest_first(suite):
    token, officer_id = await officer(suite)
    body = {"name": "Discovery order", "reference": "ORD-1", "reason": "Court order 1."}
    resp = await suite.client.post(MATTERS, json=body, headers=auth(token))
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["location"] == f"{MATTERS}/{created['id']}"
    assert created | {"id": None, "created_at": None} == {
        **body,
        "id": None,
        "status": "open",
        "created_by": officer_id,
        "created_at": None,
        "closed_at": None,
        "closed_by": None,
        "close_reason": None,
    }
    again = await suite.client.post(MATTERS, json={**body, "name": "Another"}, headers=auth(token))
    problem(again, 409, "duplicate-reference")
    for bad in (
        {**body, "reference": "ORD-2", "name": ""},
        {**body, "reference": "x" * 101},
        {**body, "reference": "ORD-3", "reason": ""},
        {**body, "reference": "ORD-4", "reason": "r" * 2001},
        {"name": "No reference", "reason": "A reason."},
        {**body, "reference": "ORD-5", "extra": 1},
        {**body, "reference": "ORD\n6"},
    ):
        problem(await suite.client.post(MATTERS, json=bad, headers=auth(token)), 422, "validation")
    assert len(await rows(suite, Matter)) == 1

    others = [await matter(suite, token) for _ in range(3)]
    listed = await suite.client.get(MATTERS, params={"limit": 2}, headers=auth(token))
    assert [m["id"] for m in listed.json()["items"]] == [others[2]["id"], others[1]["id"]]
    rest = await suite.client.get(
        MATTERS, params={"limit": 2, "cursor": listed.json()["next_cursor"]}, headers=auth(token)
    )
    assert [m["id"] for m in rest.json()["items"]] == [others[0]["id"], created["id"]]
    assert rest.json()["next_cursor"] is None
    closed = await suite.client.post(
        f"{MATTERS}/{others[1]['id']}/close", json={"reason": "Done."}, headers=auth(token)
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    assert closed.json()["close_reason"] == "Done." and closed.json()["closed_by"] == officer_id
    only = await suite.client.get(MATTERS, params={"status": "closed"}, headers=auth(token))
    assert [m["id"] for m in only.json()["items"]] == [others[1]["id"]]
    problem(
        await suite.client.get(MATTERS, params={"status": "lost"}, headers=auth(token)), 422, "validation"
    )
    problem(await suite.client.get(f"{MATTERS}/{uuid.uuid4()}", headers=auth(token)), 404)
    got = await suite.client.get(f"{MATTERS}/{created['id']}", headers=auth(token))
    assert got.json() == created


async def test_a_hold_resolves_its_custodians_through_identity(suite):
    token, officer_id = await officer(suite)
    twin = await with_personal(suite.client, unique("kim"))
    _, solo_id = await person(suite.client, unique("lee"))
    await suite.deliver()
    kim, lee = await account_of(suite, twin["pro_id"]), await account_of(suite, solo_id)
    case = await matter(suite, token)
    group_id = str(uuid.uuid4())
    resp = await place(
        suite,
        token,
        case["id"],
        custodians=[kim, lee, kim],
        group_ids=[group_id],
        date_to=NOW.isoformat(),
        terms=["Budget", "budget", "100%_sure"],
    )
    assert resp.status_code == 201, resp.text
    placed = resp.json()
    assert resp.headers["location"] == f"{MATTERS}/{case['id']}/holds/{placed['id']}"
    assert placed["custodians"] == [kim, lee] and placed["group_ids"] == [group_id]
    assert placed["status"] == "active" and placed["created_by"] == officer_id
    assert placed["terms"] == ["Budget", "budget", "100%_sure"]
    assert sorted((p["persona_id"], p["account_id"], p["context"]) for p in placed["personas"]) == sorted(
        [
            (twin["pro_id"], kim, "professional"),
            (twin["personal_id"], kim, "personal"),
            (solo_id, lee, "professional"),
        ]
    )
    hold_id = uuid.UUID(placed["id"])
    assert len(await rows(suite, HoldPersona, hold_id=hold_id)) == 3
    assert [g.group_id for g in await rows(suite, HoldGroup, hold_id=hold_id)] == [uuid.UUID(group_id)]
    patterns = sorted(t.pattern for t in await rows(suite, HoldTerm, hold_id=hold_id))
    assert patterns == ["%100\\%\\_sure%", "%budget%"]
    # identity audited the resolution, with the officer, the matter and the accounts
    async with suite.identity.state.database.sessionmaker() as session:
        entries = (
            await session.scalars(
                select(IdentityAuditEntry).where(
                    col(IdentityAuditEntry.action) == "records.custodians.resolved"
                )
            )
        ).all()
    (entry,) = entries
    assert entry.actor == officer_id and entry.details["matter_id"] == case["id"]
    assert entry.details["purpose"] == "hold"
    (audited,) = await rows(suite, AuditEntry, action="hold.placed")
    assert audited.matter_id == uuid.UUID(case["id"]) and audited.details["custodians"] == [kim, lee]

    listed = await suite.client.get(f"{MATTERS}/{case['id']}/holds", headers=auth(token))
    assert listed.json()["items"] == [placed]
    got = await suite.client.get(f"{MATTERS}/{case['id']}/holds/{placed['id']}", headers=auth(token))
    assert got.json() == placed
    other = await matter(suite, token)
    problem(await suite.client.get(f"{MATTERS}/{other['id']}/holds/{placed['id']}", headers=auth(token)), 404)


async def test_an_unknown_custodian_or_an_absent_identity_places_nothing(suite):
    token, _ = await officer(suite)
    case = await matter(suite, token)
    _, known_id = await person(suite.client, unique("ann"))
    known = await account_of(suite, known_id)
    stranger = str(uuid.uuid4())
    body = problem(
        await place(suite, token, case["id"], custodians=[known, stranger]), 422, "unknown-custodian"
    )
    assert [e["message"] for e in body["errors"]] == [stranger]
    suite.router.down.add("identity")
    try:
        resp = await place(suite, token, case["id"], custodians=[known])
    finally:
        suite.router.down.discard("identity")
    problem(resp, 503, "identity-unavailable")
    assert resp.headers["retry-after"]
    assert not await rows(suite, Hold) and not await rows(suite, HoldPersona)
    assert not await rows(suite, AuditEntry, action="hold.placed")


@pytest.mark.parametrize(
    "fields",
    [
        {"custodians": [], "group_ids": []},
        {},
    ],
)
async def test_a_hold_names_custodians_or_groups(suite, fields):
    token, _ = await officer(suite)
    case = await matter(suite, token)
    problem(await place(suite, token, case["id"], **fields), 422, "empty-scope")
    assert not await rows(suite, Hold)


async def test_a_hold_that_cannot_be_placed_is_refused(suite):
    token, _ = await officer(suite)
    case = await matter(suite, token)
    groups = [str(uuid.uuid4())]
    for fields in (
        {"group_ids": groups, "date_from": None},
        {"group_ids": groups, "date_to": (NOW - timedelta(days=400)).isoformat()},
        {"group_ids": groups, "date_from": NOW.isoformat(), "date_to": NOW.isoformat()},
        {"group_ids": groups, "date_from": 1700000000},
        {"group_ids": groups, "date_from": "0001-01-01T00:00:00+05:00"},
        {"group_ids": groups, "date_to": "9999-12-31T23:00:00-05:00"},
        {"group_ids": [str(uuid.uuid4()) for _ in range(101)]},
        {"custodians": [str(uuid.uuid4()) for _ in range(101)]},
        {"group_ids": ["not-a-group"]},
        {"group_ids": groups, "terms": ["x"]},
        {"group_ids": groups, "terms": ["t" * 101]},
        {"group_ids": groups, "terms": [f"term{n}" for n in range(51)]},
        {"group_ids": groups, "reason": "extra"},
    ):
        problem(await place(suite, token, case["id"], **fields), 422, "validation")
    problem(await place(suite, token, str(uuid.uuid4()), group_ids=groups), 404)
    assert not await rows(suite, Hold)


async def test_an_overlapping_hold_of_the_same_matter_is_refused(suite):
    token, _ = await officer(suite)
    case = await matter(suite, token)
    group, other_group = str(uuid.uuid4()), str(uuid.uuid4())
    january = datetime(2026, 1, 1, tzinfo=UTC)
    march = datetime(2026, 3, 1, tzinfo=UTC)
    first = await hold(
        suite, token, case["id"], group_ids=[group], date_from=january.isoformat(), date_to=march.isoformat()
    )
    body = problem(
        await place(suite, token, case["id"], group_ids=[other_group, group], date_from=march.isoformat()),
        409,
        "overlapping-hold",
    )
    assert body["hold_id"] == first["id"]
    problem(await place(suite, token, case["id"], group_ids=[group], date_from="2025-01-01T00:00:00Z"), 409)
    # after the range, another group, or another matter: no overlap
    await hold(
        suite, token, case["id"], group_ids=[group], date_from=(march + timedelta(seconds=1)).isoformat()
    )
    await hold(suite, token, case["id"], group_ids=[other_group], date_from=january.isoformat())
    another = await matter(suite, token)
    await hold(suite, token, another["id"], group_ids=[group])
    # a released hold overlaps nothing
    assert (await release(suite, token, case["id"], first["id"])).status_code == 200
    await hold(
        suite, token, case["id"], group_ids=[group], date_from=january.isoformat(), date_to=march.isoformat()
    )


async def test_a_hold_is_released_once_and_a_matter_closes_once_none_is_active(suite):
    token, officer_id = await officer(suite)
    case = await matter(suite, token)
    placed = await hold(suite, token, case["id"], group_ids=[str(uuid.uuid4())])
    close = f"{MATTERS}/{case['id']}/close"
    problem(
        await suite.client.post(close, json={"reason": "Done."}, headers=auth(token)), 409, "active-holds"
    )
    problem(await suite.client.post(close, json={}, headers=auth(token)), 422, "validation")
    resp = await release(suite, token, case["id"], placed["id"])
    assert resp.status_code == 200, resp.text
    released = resp.json()
    assert released["status"] == "released" and released["released_by"] == officer_id
    assert released["release_reason"] == "The matter is settled." and released["released_at"]
    problem(await release(suite, token, case["id"], placed["id"]), 409, "hold-released")
    problem(await release(suite, token, case["id"], str(uuid.uuid4())), 404)
    assert (await suite.client.post(close, json={"reason": "Done."}, headers=auth(token))).status_code == 200

    # a closed matter takes no more writes
    problem(
        await suite.client.post(close, json={"reason": "Again."}, headers=auth(token)), 409, "matter-closed"
    )
    problem(await place(suite, token, case["id"], group_ids=[str(uuid.uuid4())]), 409, "matter-closed")
    problem(await release(suite, token, case["id"], placed["id"]), 409, "matter-closed")
    actions = [
        e.action
        for e in sorted(await rows(suite, AuditEntry, matter_id=uuid.UUID(case["id"])), key=lambda e: e.id)
    ]
    assert actions == ["matter.created", "hold.placed", "hold.released", "matter.closed"]
