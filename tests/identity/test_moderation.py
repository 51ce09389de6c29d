"""Identity's side of moderation (decision 0032): a persona held by moderation against its
account's status, in both directions; the ``notices`` token of a held persona, and nowhere else;
``internal.staff.updated`` on every role change and from ``manage publish-staff``; the audit
entry of a moderation action, which names no account; and webhooks, which never carry an
``internal.*`` event."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import jwt
from sqlalchemy import select
from sqlmodel import col

from kit.db import Database
from kit.ids import new_id
from kit.outbox import EventIn
from kit.timeutil import as_utc, utcnow
from services.identity import manage, webhooks
from services.identity.accounts import PendingStatuses
from services.identity.models import (
    Account,
    AuditEntry,
    Persona,
    WebhookDelivery,
    WebhookEndpoint,
    outbox_tables,
)
from tests.helpers import PASSWORD, admin, auth, login, person, with_personal

TOKEN = "/api/v1/auth/token"
SUSPENDED, REINSTATED = "moderation.persona.suspended", "moderation.persona.reinstated"
REASON = "Repeated harassment in the comments, see report."
MODERATION_SUBSCRIBERS = json.dumps(
    [{"name": "moderation", "url": "http://moderation", "event_types": ["persona.*", "internal.staff.*"]}]
)


# ----------------------------------------------------------------------------- helpers


def _action(persona_id: str, context: str, **more: Any) -> dict[str, Any]:
    """The data of a ``moderation.persona.*`` event, as moderation publishes it."""
    return {
        "context": context,
        "report_id": str(new_id()),
        "action_id": str(new_id()),
        "target_type": "persona",
        "target_id": persona_id,
        "subject_id": persona_id,
        "until": None,
        **more,
    }


async def _from_moderation(suite, event_type: str, subject: str, data: dict[str, Any]) -> None:
    """Publishes an event the way moderation does (its own outbox) and lets every relay run."""
    state = suite.moderation.state
    async with state.database.sessionmaker() as session:
        await state.outbox.publish(session, event_type, subject, data)
        await session.commit()
    await suite.deliver()


async def _hold(suite, persona_id: str, context: str = "professional") -> None:
    await _from_moderation(suite, SUSPENDED, persona_id, _action(persona_id, context))


async def _lift(suite, persona_id: str, context: str = "professional") -> None:
    await _from_moderation(suite, REINSTATED, persona_id, _action(persona_id, context))


async def _receive(suite, event_type: str, subject: str, data: dict[str, Any], time: datetime) -> None:
    """One event at identity's receiver with the given envelope time (a late delivery)."""
    event = {
        "id": str(new_id()),
        "type": event_type,
        "source": "moderation",
        "subject": subject,
        "time": time.isoformat(),
        "data": data,
    }
    token = suite.identity.state.settings.internal_token.get_secret_value()
    resp = await suite.client.post(
        "http://identity/internal/events", json={"events": [event]}, headers=auth(token)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["applied"] == 1


async def _events(suite, event_type: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """Identity's outbox: (type, subject, data) in order."""
    t = outbox_tables.event
    async with suite.identity.state.database.sessionmaker() as session:
        rows = (await session.execute(select(t).order_by(t.c.seq))).all()
    found = [(r.type, r.subject, json.loads(r.data)) for r in rows]
    return [e for e in found if event_type is None or e[0] == event_type]


async def _subscribers_of(suite, event_type: str) -> set[str]:
    t, d = outbox_tables.event, outbox_tables.delivery
    async with suite.identity.state.database.sessionmaker() as session:
        rows = await session.execute(
            select(d.c.subscriber).join(t, t.c.seq == d.c.event_seq).where(t.c.type == event_type)
        )
        return {r.subscriber for r in rows}


async def _persona(suite, persona_id: str) -> Persona:
    async with suite.identity.state.database.sessionmaker() as session:
        found = await session.get(Persona, uuid.UUID(persona_id))
    assert found is not None
    return found


async def _account_id(suite, pro_token: str) -> str:
    account_id: str = (await suite.client.get("/api/v1/me", headers=auth(pro_token))).json()["account_id"]
    return account_id


async def _set_status(suite, root: str, account_id: str, status: str) -> None:
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"status": status, "reason": "Testing a moderation hold."},
        headers=auth(root),
    )
    assert resp.status_code == 200, resp.text


async def _visible(suite, viewer: str, persona_id: str) -> bool:
    resp = await suite.client.get(f"/api/v1/personas/{persona_id}", headers=auth(viewer))
    assert resp.status_code in (200, 404), resp.text
    return resp.status_code == 200


async def _listed(suite, viewer: str, persona_id: str) -> bool:
    resp = await suite.client.get("/api/v1/personas", headers=auth(viewer))
    assert resp.status_code == 200, resp.text
    return persona_id in {p["id"] for p in resp.json()["items"]}


async def _sign_in(suite, email: str, persona: str = "professional", scope: str | None = None):
    data = {"grant_type": "password", "username": email, "password": PASSWORD, "persona": persona}
    if scope is not None:
        data["scope"] = scope
    return await suite.client.post(TOKEN, data=data)


def _without_trace(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("instance", "trace_id")}


async def _status_events(suite, persona_id: str) -> list[str]:
    return [
        data["status"]
        for kind, subject, data in await _events(suite)
        if subject == persona_id and kind.startswith("persona.")
    ]


# ----------------------------------------------------------------------------- the hold


async def test_a_hold_suspends_the_persona_everywhere_and_its_lifting_brings_it_back(suite):
    ada = await with_personal(suite.client, "ada", discoverable=True)
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    assert await _visible(suite, bob["pro"], ada["pro_id"])
    before = await _events(suite)

    await _hold(suite, ada["pro_id"])
    new = (await _events(suite))[len(before) :]
    assert [(kind, subject) for kind, subject, _ in new] == [("persona.updated", ada["pro_id"])]
    assert new[0][2]["status"] == "suspended"
    held = await _persona(suite, ada["pro_id"])
    assert held.moderation_hold and held.status == "active"  # the account's status is untouched
    # profile, directory, sign-in and the persona's own tokens follow the status
    assert not await _visible(suite, bob["pro"], ada["pro_id"])
    assert not await _listed(suite, bob["pro"], ada["pro_id"])
    assert (await suite.client.get("/api/v1/me", headers=auth(ada["pro"]))).status_code == 401
    refused = await _sign_in(suite, ada["email"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    assert (await suite.client.get("/api/v1/timelines/home", headers=auth(ada["pro"]))).status_code == 401
    timeline = f"/api/v1/timelines/personas/{ada['pro_id']}"
    assert (await suite.client.get(timeline, headers=auth(bob["pro"]))).status_code == 404
    # the account's other persona is not touched
    assert await _visible(suite, bob["personal"], ada["personal_id"])
    assert (await suite.client.get("/api/v1/me", headers=auth(ada["personal"]))).status_code == 200
    assert (await _sign_in(suite, ada["email"], "personal")).status_code == 200
    assert ada["personal_id"] not in str(new)

    await _lift(suite, ada["pro_id"])
    assert await _status_events(suite, ada["pro_id"]) == ["active", "suspended", "active"]
    assert await _visible(suite, bob["pro"], ada["pro_id"])
    assert await _listed(suite, bob["pro"], ada["pro_id"])
    fresh = await login(suite.client, ada["email"])
    assert (await suite.client.get("/api/v1/me", headers=auth(fresh["access_token"]))).status_code == 200
    assert (await suite.client.get(timeline, headers=auth(bob["pro"]))).status_code == 200


async def test_reactivating_the_account_does_not_lift_a_hold(suite):
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada")
    bob, _ = await person(suite.client, "bob")
    account_id = await _account_id(suite, ada["pro"])
    await _hold(suite, ada["pro_id"])
    await _set_status(suite, root, account_id, "suspended")
    await _set_status(suite, root, account_id, "active")
    # what the persona shows never moved, so nothing was announced for it
    assert await _status_events(suite, ada["pro_id"]) == ["active", "suspended"]
    assert not await _visible(suite, bob, ada["pro_id"])
    assert (await _sign_in(suite, ada["email"])).status_code == 400
    await _lift(suite, ada["pro_id"])
    assert await _status_events(suite, ada["pro_id"]) == ["active", "suspended", "active"]
    assert await _visible(suite, bob, ada["pro_id"])


async def test_lifting_a_hold_does_not_reactivate_a_suspended_or_deactivated_account(suite):
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada")
    bob, _ = await person(suite.client, "bob")
    account_id = await _account_id(suite, ada["pro"])
    await _set_status(suite, root, account_id, "suspended")
    await _hold(suite, ada["pro_id"])
    await _lift(suite, ada["pro_id"])
    assert await _status_events(suite, ada["pro_id"]) == ["active", "suspended"]
    assert not await _visible(suite, bob, ada["pro_id"])
    assert (await _sign_in(suite, ada["email"])).json()["error"] == "invalid_grant"
    await _hold(suite, ada["pro_id"])
    await _set_status(suite, root, account_id, "deactivated")
    await _lift(suite, ada["pro_id"])
    assert [kind for kind, subject, _ in await _events(suite) if subject == ada["pro_id"]][-1] == (
        "persona.deactivated"
    )
    assert (await _persona(suite, ada["pro_id"])).status == "deactivated"
    await _set_status(suite, root, account_id, "active")
    assert await _visible(suite, bob, ada["pro_id"])


async def test_a_lifted_hold_does_not_show_the_personal_persona_an_account_change_early(suite):
    """The account's change reaches the personal persona only at its own pending time; lifting
    a hold meanwhile gives back what that persona showed, not what the account is now."""
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada", discoverable=True)
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    await _set_status(suite, root, await _account_id(suite, ada["pro"]), "suspended")
    await _hold(suite, ada["personal_id"], "personal")
    assert not await _visible(suite, bob["personal"], ada["personal_id"])
    await _lift(suite, ada["personal_id"], "personal")
    assert await _visible(suite, bob["personal"], ada["personal_id"])
    assert await _status_events(suite, ada["personal_id"]) == ["active", "suspended", "active"]
    pending = await _persona(suite, ada["personal_id"])
    assert pending.pending_status == "suspended"
    worker = PendingStatuses(suite.identity.state.database, suite.identity.state.outbox)
    assert await worker.apply_due(now=as_utc(pending.pending_status_at)) == 1
    assert not await _visible(suite, bob["personal"], ada["personal_id"])
    assert await _status_events(suite, ada["personal_id"]) == ["active", "suspended", "active", "suspended"]


async def test_a_late_or_misdirected_moderation_event_changes_nothing(suite):
    ada = await with_personal(suite.client, "ada")
    bob, _ = await person(suite.client, "bob")
    now = utcnow()
    await _receive(suite, REINSTATED, ada["pro_id"], _action(ada["pro_id"], "professional"), now)
    # a suspension decided before that lifting, delivered after it
    await _receive(
        suite, SUSPENDED, ada["pro_id"], _action(ada["pro_id"], "professional"), now - timedelta(seconds=5)
    )
    assert not (await _persona(suite, ada["pro_id"])).moderation_hold
    assert await _visible(suite, bob, ada["pro_id"])
    # an event naming the persona in the other context
    await _receive(
        suite, SUSPENDED, ada["pro_id"], _action(ada["pro_id"], "personal"), now + timedelta(seconds=1)
    )
    assert not (await _persona(suite, ada["pro_id"])).moderation_hold
    # a later one applies, once
    later = now + timedelta(seconds=2)
    await _receive(suite, SUSPENDED, ada["pro_id"], _action(ada["pro_id"], "professional"), later)
    held = await _persona(suite, ada["pro_id"])
    assert held.moderation_hold and as_utc(held.moderation_hold_at) == later
    assert not await _visible(suite, bob, ada["pro_id"])
    assert await _status_events(suite, ada["pro_id"]) == ["active", "suspended"]


# ----------------------------------------------------------------------------- the notices token


async def test_a_held_persona_signs_in_only_for_its_notices(suite):
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada")
    await person(suite.client, "carl")  # no personal persona
    carl_email = "carl@agency.example"
    account_id = await _account_id(suite, ada["pro"])
    granted = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}", json={"roles": ["admin"]}, headers=auth(root)
    )
    assert granted.status_code == 200
    before_hold = (await login(suite.client, ada["email"]))["access_token"]
    await suite.deliver()
    await _hold(suite, ada["pro_id"])
    await _hold(suite, ada["personal_id"], "personal")
    # the administrator's token from before the hold has stopped working at identity
    assert (await suite.client.get("/api/v1/webhooks", headers=auth(before_hold))).status_code == 403
    assert (await suite.client.get("/api/v1/admin/accounts", headers=auth(before_hold))).status_code == 401

    signed = await _sign_in(suite, ada["email"], scope="notices")
    assert signed.status_code == 200, signed.text
    assert signed.json()["scope"] == "notices"
    claims = jwt.get_unverified_claims(signed.json()["access_token"])
    assert claims["scope"] == "notices" and claims["roles"] == [] and claims["sub"] == ada["pro_id"]
    notices = signed.json()["access_token"]
    refreshed = await suite.client.post(
        TOKEN,
        data={
            "grant_type": "refresh_token",
            "refresh_token": signed.json()["refresh_token"],
            "persona": "personal",
            "scope": "notices",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert jwt.get_unverified_claims(refreshed.json()["access_token"])["scope"] == "notices"

    # any other scope: the refusal a persona that cannot sign in gets, the same as a missing one
    for scope in (None, "", "read", "notices read"):
        held = await _sign_in(suite, ada["email"], "personal", scope)
        missing = await _sign_in(suite, carl_email, "personal", scope)
        assert held.status_code == missing.status_code == 400
        assert _without_trace(held.json()) == _without_trace(missing.json())
    assert (await _sign_in(suite, ada["email"], scope="read")).json()["error"] == "invalid_request"

    # identity honours it nowhere, not even for an administrator
    for path in ("/api/v1/me", "/api/v1/personas", "/api/v1/admin/accounts", "/api/v1/webhooks"):
        resp = await suite.client.get(path, headers=auth(notices))
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["type"].endswith("/notices-only")
    # feed and groups refuse it: the persona they know is suspended
    assert (await suite.client.get("/api/v1/timelines/home", headers=auth(notices))).status_code == 401
    assert (await suite.client.get("/api/v1/groups", headers=auth(notices))).status_code == 401
    # moderation takes it on the persona's notices
    read = await suite.client.get("/api/v1/me/notices", headers=auth(notices))
    assert read.status_code == 200, read.text

    # an active persona does not get one; once the hold is lifted, neither does ada
    active = await _sign_in(suite, carl_email, scope="notices")
    assert active.status_code == 400 and active.json()["error"] == "invalid_scope"
    assert (await _sign_in(suite, carl_email)).status_code == 200
    await _lift(suite, ada["pro_id"])
    assert (await _sign_in(suite, ada["email"], scope="notices")).json()["error"] == "invalid_scope"
    full = await _sign_in(suite, ada["email"])
    assert full.status_code == 200 and full.json()["scope"] == ""
    assert jwt.get_unverified_claims(full.json()["access_token"])["roles"] == ["admin"]
    # and a notices token left over opens nothing at identity still, nor at feed and groups,
    # where the persona is active again
    assert (await suite.client.get("/api/v1/me", headers=auth(notices))).status_code == 403
    await suite.deliver()
    assert (
        await suite.client.get("/api/v1/timelines/home", headers=auth(full.json()["access_token"]))
    ).status_code == 200
    assert (await suite.client.get("/api/v1/timelines/home", headers=auth(notices))).status_code == 401
    assert (await suite.client.get("/api/v1/groups", headers=auth(notices))).status_code == 401


# ----------------------------------------------------------------------------- staff roles


async def test_every_role_change_tells_moderation_the_professional_personas_staff_roles(suite):
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada")
    path = f"/api/v1/admin/accounts/{await _account_id(suite, ada['pro'])}"
    before = len(await _events(suite, "internal.staff.updated"))

    for roles, staff in (
        (["moderator"], ["moderator"]),
        (["communications"], []),
        (["admin", "moderator"], ["admin", "moderator"]),
    ):
        resp = await suite.client.patch(path, json={"roles": roles}, headers=auth(root))
        assert resp.status_code == 200, resp.text
        *_, (_, subject, data) = await _events(suite, "internal.staff.updated")
        assert subject == ada["pro_id"]
        assert data == {"persona_id": ada["pro_id"], "context": "professional", "roles": staff}
    # a change of nothing, or of the status alone, announces nothing
    await suite.client.patch(path, json={"roles": ["moderator", "admin"]}, headers=auth(root))
    assert len(await _events(suite, "internal.staff.updated")) == before + 3
    assert await _subscribers_of(suite, "internal.staff.updated") == {"moderation", "records", "identity"}
    everything = str(await _events(suite, "internal.staff.updated"))
    assert ada["personal_id"] not in everything and ada["email"] not in everything
    assert path.rsplit("/", 1)[1] not in everything  # the account id


async def test_grant_role_and_publish_staff_announce_role_holders(suite):
    state = suite.identity.state
    _, root_id = await admin(suite)
    ada = await with_personal(suite.client, "ada")
    carl, _ = await person(suite.client, "carl")
    seen = len(await _events(suite, "internal.staff.updated"))

    assert await manage.grant_role(state.database, ada["email"], "moderator", state.outbox)
    assert await manage.grant_role(state.database, ada["email"], "moderator", state.outbox)  # held already
    assert await manage.grant_role(state.database, "carl@agency.example", "communications", state.outbox)
    assert not await manage.grant_role(state.database, "nobody@agency.example", "admin", state.outbox)
    announced = (await _events(suite, "internal.staff.updated"))[seen:]
    # a role already held changes nothing; carl's is no staff role, but a role change all the same
    assert [(s, d["roles"]) for _, s, d in announced] == [
        (ada["pro_id"], ["moderator"]),
        (await _pro_id(suite, carl), []),
    ]

    seen = len(await _events(suite, "internal.staff.updated"))
    assert await manage.publish_staff(state.database, state.outbox) == 2
    seeded = (await _events(suite, "internal.staff.updated"))[seen:]
    assert {s: d["roles"] for _, s, d in seeded} == {root_id: ["admin"], ada["pro_id"]: ["moderator"]}
    await suite.deliver()
    assert await _subscribers_of(suite, "internal.staff.updated") == {"moderation", "records", "identity"}


async def _pro_id(suite, token: str) -> str:
    persona_id: str = (await suite.client.get("/api/v1/me", headers=auth(token))).json()["professional"]["id"]
    return persona_id


def test_the_manage_commands_announce_staff_with_the_services_subscribers(database_urls, monkeypatch, capsys):
    url = database_urls["identity"]
    monkeypatch.setenv("IDENTITY_DATABASE_URL", url)
    monkeypatch.delenv("IDENTITY_SUBSCRIBERS", raising=False)
    persona_id = asyncio.run(_an_account(url, "ada@agency.example"))

    assert manage.main(["grant-role", "ada@agency.example", "communications"]) == 0
    assert "No subscriber" not in capsys.readouterr().err  # no staff role: nothing to tell
    assert manage.main(["grant-role", "ada@agency.example", "moderator"]) == 0
    assert "No subscriber receives internal.staff.updated" in capsys.readouterr().err
    monkeypatch.setenv("IDENTITY_SUBSCRIBERS", MODERATION_SUBSCRIBERS)
    assert manage.main(["publish-staff"]) == 0
    out = capsys.readouterr()
    assert "Announced 1 staff role holders." in out.out and out.err == ""
    assert manage.main(["grant-role", "nobody@agency.example", "admin"]) == 1

    rows = asyncio.run(_staff_rows(url))
    assert [(subject, data["roles"], subscribers) for subject, data, subscribers in rows] == [
        (persona_id, [], []),
        (persona_id, ["moderator"], []),
        (persona_id, ["moderator"], ["moderation"]),
    ]


async def _an_account(url: str, email: str) -> str:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            account = Account(email=email, password_hash="unused")
            session.add(account)
            await session.flush()
            persona = Persona(account_id=account.id, kind="professional", handle="ada", display_name="Ada")
            session.add(persona)
            await session.commit()
            return str(persona.id)
    finally:
        await database.dispose()


async def _staff_rows(url: str) -> list[tuple[str, dict[str, Any], list[str]]]:
    t, d = outbox_tables.event, outbox_tables.delivery
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            events = (
                await session.execute(select(t).where(t.c.type == "internal.staff.updated").order_by(t.c.seq))
            ).all()
            rows = []
            for event in events:
                subscribers = await session.scalars(select(d.c.subscriber).where(d.c.event_seq == event.seq))
                rows.append((event.subject, json.loads(event.data), sorted(subscribers)))
            return rows
    finally:
        await database.dispose()


# ----------------------------------------------------------------------------- the audit log


async def test_moderation_actions_are_audited_with_no_account(suite):
    root, _ = await admin(suite)
    mod = await with_personal(suite.client, "mod")
    ada = await with_personal(suite.client, "ada")
    group_id = str(uuid.uuid4())

    def audit_data(**who: str | None) -> dict[str, Any]:
        return {
            "context": "personal",
            "report_id": str(new_id()),
            "action_id": str(new_id()),
            "kind": "hide",
            "reason": REASON,
            "target_type": "post",
            "target_id": str(new_id()),
            "subject_id": ada["personal_id"],
            "moderator_id": None,
            "group_id": None,
            **who,
        }

    staff = audit_data(moderator_id=mod["pro_id"], reason="x" * 2000, kind="suspend_persona")
    by_group = audit_data(moderator_id=mod["personal_id"], group_id=group_id)
    by_nobody = audit_data(kind="unlimit")
    for data in (staff, by_group, by_nobody):
        await _from_moderation(suite, "internal.moderation.audit", data["action_id"], data)

    async with suite.identity.state.database.sessionmaker() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(col(AuditEntry.action).startswith("moderation.")))
        ).all()
    by_action = {e.details["action_id"]: e for e in entries}
    assert len(entries) == 3
    assert {e.account_id for e in entries} == {None}
    assert by_action[staff["action_id"]].actor == mod["pro_id"]
    assert by_action[staff["action_id"]].action == "moderation.suspend_persona"
    assert by_action[staff["action_id"]].reason == "x" * 2000
    assert by_action[by_group["action_id"]].actor == f"group:{group_id}"
    assert by_action[by_nobody["action_id"]].actor == "moderation"
    entry = by_action[by_group["action_id"]]
    assert entry.reason == REASON and entry.action == "moderation.hide"
    assert entry.details == {
        "context": "personal",
        "report_id": by_group["report_id"],
        "action_id": by_group["action_id"],
        "target_type": "post",
        "target_id": by_group["target_id"],
        "subject_id": ada["personal_id"],
    }
    # the administrators' log shows them; no entry ties the personal persona to a role
    listed = (await suite.client.get("/api/v1/admin/audit", headers=auth(root))).json()["items"]
    assert {e["actor"] for e in listed if e["action"].startswith("moderation.")} == {
        mod["pro_id"],
        f"group:{group_id}",
        "moderation",
    }
    assert mod["personal_id"] not in str(listed)


# ----------------------------------------------------------------------------- webhooks


def _event(event_type: str, **data: Any) -> EventIn:
    return EventIn(
        id=new_id(),
        type=event_type,
        source="moderation",
        subject=str(uuid.uuid4()),
        time=datetime.now(UTC),
        data=data,
    )


def test_webhooks_want_no_internal_event_whatever_the_endpoint_subscribed_to():
    everything = WebhookEndpoint(
        owner="x",
        url="https://example.org",
        secret="s",
        event_types=["*"],
        contexts=["professional", "personal"],
    )
    internal = WebhookEndpoint(
        owner="x",
        url="https://example.org",
        secret="s",
        event_types=["internal.*"],
        contexts=["professional", "personal"],
    )
    professional = WebhookEndpoint(
        owner="x",
        url="https://example.org",
        secret="s",
        event_types=["moderation.*"],
        contexts=["professional"],
    )
    for event_type in (
        "internal.staff.updated",
        "internal.moderation.audit",
        "internal.content.held",
        "internal.moderation.terms",
    ):
        for endpoint in (everything, internal, professional):
            assert not webhooks.wants(endpoint, _event(event_type, context="professional"))
            assert not webhooks.wants(endpoint, _event(event_type))
    hidden = _event("moderation.content.hidden", context="professional")
    assert webhooks.wants(everything, hidden) and webhooks.wants(professional, hidden)
    personal = _event("moderation.persona.warned", context="personal")
    assert webhooks.wants(everything, personal) and not webhooks.wants(professional, personal)


async def test_webhooks_get_moderation_events_and_never_internal_ones(hooks_suite):
    suite = hooks_suite
    root, _ = await admin(suite)
    body = {"url": "http://127.0.0.1:9/hooks", "event_types": ["*"], "contexts": ["professional", "personal"]}
    hook = await suite.client.post("/api/v1/webhooks", json=body, headers=auth(root))
    assert hook.status_code == 201, hook.text
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    await suite.client.patch(
        f"/api/v1/admin/accounts/{await _account_id(suite, ada['pro'])}",
        json={"roles": ["moderator"]},
        headers=auth(root),
    )
    await _from_moderation(
        suite, "moderation.persona.warned", ada["personal_id"], _action(ada["personal_id"], "personal")
    )
    await _hold(suite, ada["pro_id"])
    audit = {
        "context": "professional",
        "report_id": str(new_id()),
        "action_id": str(new_id()),
        "kind": "warn",
        "reason": REASON,
        "target_type": "persona",
        "target_id": ada["pro_id"],
        "subject_id": ada["pro_id"],
        "moderator_id": None,
        "group_id": None,
    }
    await _from_moderation(suite, "internal.moderation.audit", audit["action_id"], audit)
    await suite.deliver()

    async with suite.identity.state.database.sessionmaker() as session:
        types = set((await session.scalars(select(WebhookDelivery.event_type))).all())
    assert {"moderation.persona.warned", SUSPENDED, "persona.updated"} <= types
    assert not [t for t in types if t.startswith("internal.")]
    # the staff event did reach identity's receiver (it receives every event), and stopped there
    assert "identity" in await _subscribers_of(suite, "internal.staff.updated")
