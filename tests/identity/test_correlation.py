"""Correlation: one account-level action must not leave matching traces in both contexts
(docs/boundary.md). Each test here pairs two personas the way an observer would, with ordinary
means, and shows that the pairing no longer works."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from kit.timeutil import as_utc, utcnow
from services.identity.accounts import PendingStatuses
from services.identity.models import Account, Persona, outbox_tables
from tests.helpers import admin, auth, with_personal


async def _account_id(suite, email: str) -> uuid.UUID:
    async with suite.identity.state.database.sessionmaker() as session:
        account = await session.scalar(select(Account).where(Account.email == email))
    assert account is not None
    return account.id


async def _events(suite) -> list:
    t = outbox_tables.event
    async with suite.identity.state.database.sessionmaker() as session:
        return list((await session.execute(select(t).order_by(t.c.seq))).all())


async def _set_status(suite, root: str, account_id: uuid.UUID, status: str) -> None:
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"status": status, "reason": "Testing what observers can see."},
        headers=auth(root),
    )
    assert resp.status_code == 200, resp.text


async def _profile(suite, token: str, persona_id: str) -> dict | None:
    resp = await suite.client.get(f"/api/v1/personas/{persona_id}", headers=auth(token))
    return resp.json() if resp.status_code == 200 else None


def _uuid7_time(value: str) -> datetime:
    ms = uuid.UUID(value).int >> 80
    return datetime.fromtimestamp(ms / 1000).astimezone().astimezone(tz=as_utc(utcnow()).tzinfo)


def _pending_statuses(suite) -> PendingStatuses:
    return PendingStatuses(suite.identity.state.database, suite.identity.state.outbox)


async def test_account_status_changes_move_no_persona_timestamp(suite):
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada", discoverable=True)
    bob = await with_personal(suite.client, "bob")
    before = {
        "pro": await _profile(suite, bob["pro"], ada["pro_id"]),
        "personal": await _profile(suite, bob["personal"], ada["personal_id"]),
    }
    account_id = await _account_id(suite, ada["email"])
    for status in ("suspended", "active", "suspended", "active"):
        await _set_status(suite, root, account_id, status)
    await _pending_statuses(suite).apply_due(now=utcnow() + timedelta(days=2))
    after = {
        "pro": await _profile(suite, bob["pro"], ada["pro_id"]),
        "personal": await _profile(suite, bob["personal"], ada["personal_id"]),
    }
    assert before["pro"] is not None and before["personal"] is not None
    assert after == before
    # never edited: no time at all, and no creation time either
    assert before["pro"]["updated_at"] is None and before["personal"]["updated_at"] is None
    assert "created_at" not in before["pro"]


async def test_the_personal_side_of_an_account_change_comes_later_with_its_own_stamps(suite):
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada", discoverable=True)
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    seen = len(await _events(suite))
    account_id = await _account_id(suite, ada["email"])
    await _set_status(suite, root, account_id, "suspended")

    # at once: the professional persona is gone from its context, the personal one is untouched
    assert await _profile(suite, bob["pro"], ada["pro_id"]) is None
    assert await _profile(suite, bob["personal"], ada["personal_id"]) is not None
    listed = await suite.client.get("/api/v1/personas?q=ada", headers=auth(bob["personal"]))
    assert ada["personal_id"] in listed.text
    new = (await _events(suite))[seen:]
    assert [e.subject for e in new] == [ada["pro_id"]]
    professional_event = new[0]

    # its change is scheduled at least the configured delay later
    low, _ = suite.identity.state.settings.unlink_delay_seconds
    async with suite.identity.state.database.sessionmaker() as session:
        personal = await session.get(Persona, uuid.UUID(ada["personal_id"]))
    assert personal is not None and personal.pending_status == "suspended"
    assert as_utc(personal.pending_status_at) - as_utc(professional_event.occurred_at) >= timedelta(
        seconds=low
    )
    # nothing the relay delivers meanwhile names the personal persona
    await suite.deliver()
    assert [e.subject for e in (await _events(suite))[seen:]] == [ada["pro_id"]]

    # when it is applied, its event is stamped then, not when the account changed
    released_from = utcnow()
    assert await _pending_statuses(suite).apply_due(now=as_utc(personal.pending_status_at)) == 1
    [personal_event] = (await _events(suite))[seen + 1 :]
    assert personal_event.subject == ada["personal_id"]
    assert as_utc(personal_event.occurred_at) >= released_from
    assert _uuid7_time(str(personal_event.id)) >= released_from - timedelta(milliseconds=1)
    assert json.loads(personal_event.data)["updated_at"] is None
    assert await _profile(suite, bob["personal"], ada["personal_id"]) is None

    # and the feed's replica learns it only then
    await suite.deliver()
    assert (
        await suite.client.get(
            f"/api/v1/timelines/personas/{ada['personal_id']}", headers=auth(bob["personal"])
        )
    ).status_code == 404


async def test_a_change_undone_before_its_delay_never_shows_in_the_other_context(suite):
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada", discoverable=True)
    await suite.deliver()
    seen = len(await _events(suite))
    account_id = await _account_id(suite, ada["email"])
    await _set_status(suite, root, account_id, "suspended")
    await _set_status(suite, root, account_id, "active")
    assert await _pending_statuses(suite).apply_due(now=utcnow() + timedelta(days=2)) == 0
    assert {e.subject for e in (await _events(suite))[seen:]} == {ada["pro_id"]}


async def test_persona_ids_carry_no_time(suite):
    ada = await with_personal(suite.client, "ada")
    account_id = await _account_id(suite, ada["email"])
    assert account_id.version == 7  # an account id is never shown outside identity's own answers
    for persona_id in (ada["pro_id"], ada["personal_id"]):
        assert uuid.UUID(persona_id).version == 4
