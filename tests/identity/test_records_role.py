"""The ``records`` role (decision 0033): granted like ``moderator``, by the operator's command and
through the admin API, and announced in ``internal.staff.updated`` to moderation and records."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import select

from kit.db import Database
from services.identity import manage
from services.identity.models import Account, AuditEntry, Persona, outbox_tables
from tests.helpers import admin, auth, login, register, with_personal

STAFF = "internal.staff.updated"


async def _staff_events(suite) -> list[tuple[str, dict[str, Any], set[str]]]:
    """Identity's staff events in order: (subject, data, subscribers)."""
    t, d = outbox_tables.event, outbox_tables.delivery
    async with suite.identity.state.database.sessionmaker() as session:
        events = (await session.execute(select(t).where(t.c.type == STAFF).order_by(t.c.seq))).all()
        found = []
        for event in events:
            subscribers = set(await session.scalars(select(d.c.subscriber).where(d.c.event_seq == event.seq)))
            found.append((event.subject, json.loads(event.data), subscribers))
    return found


async def test_granting_records_announces_it_to_moderation_and_records(suite):
    state = suite.identity.state
    ada = await with_personal(suite.client, "ada")
    seen = len(await _staff_events(suite))

    assert await manage.grant_role(state.database, ada["email"], "records", state.outbox)
    assert await manage.grant_role(state.database, ada["email"], "records", state.outbox)  # held already

    announced = (await _staff_events(suite))[seen:]
    assert announced == [
        (
            ada["pro_id"],
            {"persona_id": ada["pro_id"], "context": "professional", "roles": ["records"]},
            {"moderation", "records", "identity"},
        )
    ]
    assert ada["personal_id"] not in str(announced)
    async with state.database.sessionmaker() as session:
        account = await session.scalar(select(Account).where(Account.email == ada["email"]))
        assert account is not None and account.roles == ["records"]
        entry = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.account_id == account.id, AuditEntry.action == "account.roles"
                )
            )
        ).one()
    assert (entry.actor, entry.details) == ("operator", {"granted": "records"})
    # and a later seeding of the replicas names it with the other staff roles
    seen = len(await _staff_events(suite))
    assert await manage.publish_staff(state.database, state.outbox) == 1
    assert [d["roles"] for _, d, _ in (await _staff_events(suite))[seen:]] == [["records"]]


async def test_administrators_grant_and_take_back_the_records_role(suite):
    root, _ = await admin(suite)
    email = await register(suite.client, "ada")
    ada = await login(suite.client, email)
    account_id = (await suite.client.get("/api/v1/me", headers=auth(ada["access_token"]))).json()[
        "account_id"
    ]
    path = f"/api/v1/admin/accounts/{account_id}"

    # every role at once is within the list's bound
    every = ["admin", "moderator", "communications", "records"]
    resp = await suite.client.patch(path, json={"roles": every}, headers=auth(root))
    assert resp.status_code == 200, resp.text
    assert resp.json()["roles"] == sorted(every)
    *_, (subject, data, _) = await _staff_events(suite)
    assert subject == ada["persona_id"] and data["roles"] == ["admin", "moderator", "records"]

    resp = await suite.client.patch(path, json={"roles": ["communications"]}, headers=auth(root))
    assert resp.status_code == 200, resp.text
    *_, (_, data, _) = await _staff_events(suite)
    assert data["roles"] == []

    # an unknown role is refused, and so is a list longer than the roles there are
    for roles in (["archivist"], [*every, "records"]):
        resp = await suite.client.patch(path, json={"roles": roles}, headers=auth(root))
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
    me = (await suite.client.get("/api/v1/me", headers=auth(ada["access_token"]))).json()
    assert me["roles"] == ["communications"]


def test_the_operators_command_grants_records(database_urls, monkeypatch, capsys):
    url = database_urls["identity"]
    monkeypatch.setenv("IDENTITY_DATABASE_URL", url)
    monkeypatch.delenv("IDENTITY_SUBSCRIBERS", raising=False)
    asyncio.run(_an_account(url, "ada@agency.example"))

    assert manage.main(["grant-role", "ada@agency.example", "records"]) == 0
    out = capsys.readouterr()
    assert "now has the role records" in out.out
    # a staff role: without the service's subscribers nobody would hear of it, and it says so
    assert "No subscriber receives internal.staff.updated" in out.err
    assert asyncio.run(_roles(url, "ada@agency.example")) == ["records"]


async def _an_account(url: str, email: str) -> None:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            account = Account(email=email, password_hash="unused")
            session.add(account)
            await session.flush()
            session.add(Persona(account_id=account.id, kind="professional", handle="ada", display_name="Ada"))
            await session.commit()
    finally:
        await database.dispose()


async def _roles(url: str, email: str) -> list[str]:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            account = await session.scalar(select(Account).where(Account.email == email))
            assert account is not None
            return account.roles
    finally:
        await database.dispose()
