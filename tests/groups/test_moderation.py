"""Moderation as groups applies it (decision 0032): moderation's ``moderation.group.*`` events
hide, remove and restore a group; a moderated group answers as a missing one, but a hidden
one still reaches its owners, read-only; each change is told as ``group.updated``; moderation's
lookup of a reported group answers with groups' own rule; a suspended persona is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.groups.models import Group, PersonaReplica, outbox_tables
from tests.groups.support import GROUPS, join, people, problem, published, same_problem
from tests.helpers import admin, auth, create_group, with_personal

LOOKUP = "http://groups/internal/moderation/groups"


def moderation_event(
    action: str,
    group_id: str,
    *,
    context: str = "professional",
    at: datetime | None = None,
    event_id: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A ``moderation.group.<action>`` event as moderation's relay sends it."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": f"moderation.group.{action}",
        "source": "moderation",
        "subject": group_id,
        "time": (at or datetime.now(UTC)).isoformat(),
        "data": {
            "context": context,
            "report_id": str(uuid.uuid4()),
            "action_id": str(uuid.uuid4()),
            "target_type": "group",
            "target_id": group_id,
            "subject_id": None,
            "until": None,
            **data,
        },
    }


async def moderate(suite: Any, *events: dict[str, Any]) -> dict[str, int]:
    """Delivers events to groups the way moderation's relay does."""
    token = suite.groups.state.settings.internal_token.get_secret_value()
    resp = await suite.client.post(
        "http://groups/internal/events", json={"events": list(events)}, headers=auth(token)
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, int] = resp.json()
    return body


async def stored(suite: Any, group_id: str) -> Group:
    async with suite.groups.state.database.sessionmaker() as session:
        group: Group | None = await session.get(Group, uuid.UUID(group_id))
    assert group is not None
    return group


async def lookup(suite: Any, group_id: str, reader: str, token: str | None = None) -> Any:
    if token is None:
        token = suite.groups.state.settings.internal_token.get_secret_value()
    return await suite.client.get(f"{LOOKUP}/{group_id}", params={"reader": reader}, headers=auth(token))


async def a_group(suite: Any, visibility: str = "open") -> dict[str, Any]:
    """ada owns the group, with carl as a second owner, bob is a member, eve is an outsider."""
    p = await people(suite, "ada", "bob", "carl", "eve")
    ada, ada_id = p["ada"]
    group = await create_group(suite.client, ada, f"g{uuid.uuid4().hex[:8]}", visibility="open")
    for name in ("bob", "carl"):
        assert (await join(suite, group["id"], *p[name])).status_code == 201
    resp = await suite.client.patch(
        f"{GROUPS}/{group['id']}/members/{p['carl'][1]}", json={"role": "owner"}, headers=auth(ada)
    )
    assert resp.status_code == 200, resp.text
    if visibility != "open":
        resp = await suite.client.patch(
            f"{GROUPS}/{group['id']}", json={"visibility": visibility}, headers=auth(ada)
        )
        assert resp.status_code == 200, resp.text
    await suite.deliver()
    return {"group": group, "id": group["id"], "people": p, "owner_id": ada_id}


async def listed(suite: Any, token: str, **params: Any) -> set[str]:
    resp = await suite.client.get(GROUPS, params=params, headers=auth(token))
    assert resp.status_code == 200, resp.text
    return {g["id"] for g in resp.json()["items"]}


async def my_groups(suite: Any, token: str) -> set[str]:
    resp = await suite.client.get(f"{GROUPS}/memberships", headers=auth(token))
    assert resp.status_code == 200, resp.text
    return {m["group"]["id"] for m in resp.json()["items"]}


async def test_a_hidden_group_is_missing_for_members_and_outsiders_and_read_only_for_owners(suite):
    world = await a_group(suite)
    gid, p = world["id"], world["people"]
    (ada, _), (bob, bob_id), (carl, _), (eve, eve_id) = (p[n] for n in ("ada", "bob", "carl", "eve"))
    before = await stored(suite, gid)

    assert (await moderate(suite, moderation_event("hidden", gid)))["applied"] == 1
    after = await stored(suite, gid)
    assert after.moderation == "hidden" and after.moderated_at is not None
    assert after.updated_at > before.updated_at

    missing = await suite.client.get(f"{GROUPS}/{uuid.uuid4()}", headers=auth(bob))
    for token in (bob, eve):
        for path in ("", "/members", "/health", "/join-requests", "/invitations"):
            resp = await suite.client.get(f"{GROUPS}/{gid}{path}", headers=auth(token))
            same_problem(resp, missing)
        assert gid not in await listed(suite, token)
        assert gid not in await listed(suite, token, q=world["group"]["handle"])
    assert gid not in await listed(suite, bob, mine="true")
    assert gid not in await my_groups(suite, bob)
    same_problem(await join(suite, gid, eve, eve_id), missing)
    resp = await suite.client.delete(f"{GROUPS}/{gid}/members/{bob_id}", headers=auth(bob))
    same_problem(resp, missing)  # a member cannot even leave what it cannot see

    for token in (ada, carl):  # every owner sees it, marked
        resp = await suite.client.get(f"{GROUPS}/{gid}", headers=auth(token))
        assert resp.status_code == 200, resp.text
        assert resp.json()["moderation"] == "hidden" and resp.json()["my_role"] == "owner"
        assert gid in await listed(suite, token)
        assert gid in await my_groups(suite, token)
        resp = await suite.client.get(f"{GROUPS}/{gid}/members", headers=auth(token))
        assert resp.status_code == 200 and len(resp.json()["items"]) == 3
        assert (await suite.client.get(f"{GROUPS}/{gid}/health", headers=auth(token))).status_code == 200


async def test_the_owners_of_a_hidden_group_change_nothing(suite):
    world = await a_group(suite)
    gid, p = world["id"], world["people"]
    ada = p["ada"][0]
    bob_id, carl_id, eve_id = p["bob"][1], p["carl"][1], p["eve"][1]
    invited = await suite.client.post(
        f"{GROUPS}/{gid}/invitations", json={"persona_id": eve_id}, headers=auth(ada)
    )
    assert invited.status_code == 201, invited.text
    await moderate(suite, moderation_event("hidden", gid))
    await suite.deliver()
    events_before = await published(suite)
    group_before = await stored(suite, gid)

    writes = [
        ("PATCH", f"{GROUPS}/{gid}", {"name": "Renamed"}),
        ("DELETE", f"{GROUPS}/{gid}", None),
        ("POST", f"{GROUPS}/{gid}/restore", None),
        ("PATCH", f"{GROUPS}/{gid}/members/{bob_id}", {"role": "moderator"}),
        ("DELETE", f"{GROUPS}/{gid}/members/{bob_id}", None),
        ("DELETE", f"{GROUPS}/{gid}/members/{carl_id}", None),
        ("POST", f"{GROUPS}/{gid}/invitations", {"persona_id": str(uuid.uuid4())}),
        ("DELETE", f"{GROUPS}/{gid}/invitations/{eve_id}", None),
    ]
    for method, path, body in writes:
        resp = await suite.client.request(method, path, json=body, headers=auth(ada))
        assert problem(resp, 409)["type"].endswith("/group-moderated"), (method, path, resp.text)
    hard = await suite.client.delete(f"{GROUPS}/{gid}", params={"hard": "true"}, headers=auth(ada))
    assert problem(hard, 403)  # administrators only, as for any group

    assert await published(suite) == events_before
    group_after = await stored(suite, gid)
    assert (group_after.name, group_after.updated_at, group_after.archived_at, group_after.member_count) == (
        group_before.name,
        group_before.updated_at,
        None,
        3,
    )
    resp = await suite.client.get(
        f"{GROUPS}/{gid}/invitations", params={"status": "pending"}, headers=auth(ada)
    )
    assert [i["persona_id"] for i in resp.json()["items"]] == [eve_id]
    resp = await suite.client.get(f"{GROUPS}/invitations", headers=auth(p["eve"][0]))
    assert resp.status_code == 200 and resp.json()["items"] == []  # the invitee sees nothing


async def test_a_removed_group_is_gone_for_everyone_then_restored(suite):
    world = await a_group(suite, visibility="secret")
    gid, p = world["id"], world["people"]
    root, _ = await admin(suite)
    await suite.deliver()
    tokens = [p[n][0] for n in ("ada", "bob", "carl", "eve")] + [root]
    assert (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(root))).status_code == 200

    await moderate(suite, moderation_event("removed", gid))
    assert (await stored(suite, gid)).moderation == "removed"
    missing = await suite.client.get(f"{GROUPS}/{uuid.uuid4()}", headers=auth(root))
    for token in tokens:
        same_problem(await suite.client.get(f"{GROUPS}/{gid}", headers=auth(token)), missing)
        same_problem(await suite.client.get(f"{GROUPS}/{gid}/members", headers=auth(token)), missing)
        assert gid not in await listed(suite, token)
        assert gid not in await my_groups(suite, token)
    resp = await suite.client.delete(f"{GROUPS}/{gid}", params={"hard": "true"}, headers=auth(root))
    same_problem(resp, missing)  # kept for the record: not even deleted for good
    assert (await stored(suite, gid)).moderation == "removed"

    await moderate(suite, moderation_event("restored", gid))
    assert (await stored(suite, gid)).moderation is None
    for token in [*tokens[:3], root]:
        resp = await suite.client.get(f"{GROUPS}/{gid}", headers=auth(token))
        assert resp.status_code == 200, resp.text
        assert resp.json()["moderation"] is None
        assert gid in await listed(suite, token)
    # a secret group again, not an open one: eve still does not see it
    same_problem(await suite.client.get(f"{GROUPS}/{gid}", headers=auth(p["eve"][0])), missing)
    resp = await suite.client.patch(f"{GROUPS}/{gid}", json={"name": "Back"}, headers=auth(p["ada"][0]))
    assert resp.status_code == 200, resp.text


async def test_each_change_is_published_as_group_updated_with_its_moderation(suite):
    world = await a_group(suite)
    gid = world["id"]
    start = datetime.now(UTC)
    resp = await suite.client.patch(
        f"{GROUPS}/{gid}", json={"name": "Plain"}, headers=auth(world["people"]["ada"][0])
    )
    assert resp.status_code == 200
    for offset, action in enumerate(("hidden", "removed", "restored")):
        await moderate(suite, moderation_event(action, gid, at=start + timedelta(seconds=offset + 1)))
    updates = await published(suite, "group.updated")
    assert [(subject, data["moderation"]) for _, subject, data in updates] == [
        (gid, None),
        (gid, "hidden"),
        (gid, "removed"),
        (gid, None),
    ]
    stamps = [datetime.fromisoformat(data["updated_at"]) for _, _, data in updates]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # the replicas order by it
    created = await published(suite, "group.created")
    assert created[0][2]["moderation"] is None
    assert set(updates[1][2]) == set(created[0][2])


async def test_an_event_older_than_the_decision_applied_last_changes_nothing(suite):
    world = await a_group(suite)
    gid = world["id"]
    hidden_at = datetime.now(UTC)
    await moderate(suite, moderation_event("hidden", gid, at=hidden_at))
    moderated_at = (await stored(suite, gid)).moderated_at
    count = len(await published(suite, "group.updated"))

    # a restore decided before the hide, delivered after it
    await moderate(suite, moderation_event("restored", gid, at=hidden_at - timedelta(minutes=1)))
    group = await stored(suite, gid)
    assert (group.moderation, group.moderated_at) == ("hidden", moderated_at)
    assert len(await published(suite, "group.updated")) == count

    # the same decision again, later: nothing to tell, but it is now the latest
    await moderate(suite, moderation_event("hidden", gid, at=hidden_at + timedelta(seconds=10)))
    assert len(await published(suite, "group.updated")) == count
    await moderate(suite, moderation_event("restored", gid, at=hidden_at + timedelta(seconds=5)))
    assert (await stored(suite, gid)).moderation == "hidden"

    # a redelivered event is applied once
    restore = moderation_event("restored", gid, at=hidden_at + timedelta(seconds=20))
    await moderate(suite, restore)
    await moderate(suite, restore)
    assert (await stored(suite, gid)).moderation is None
    assert len(await published(suite, "group.updated")) == count + 1
    resp = await suite.client.get(f"{GROUPS}/{gid}", headers=auth(world["people"]["eve"][0]))
    assert resp.status_code == 200


async def test_events_that_do_not_fit_change_nothing(suite):
    world = await a_group(suite)
    gid = world["id"]
    count = len(await published(suite))
    # another context's decision names no group of that context
    await moderate(suite, moderation_event("hidden", gid, context="personal"))
    # a group that does not exist (deleted meanwhile)
    await moderate(suite, moderation_event("removed", str(uuid.uuid4())))
    # not about a group: dead-lettered, never applied
    await moderate(suite, moderation_event("hidden", gid, target_type="post"))
    await moderate(suite, moderation_event("hidden", gid, context="elsewhere"))
    group = await stored(suite, gid)
    assert (group.moderation, group.moderated_at) == (None, None)
    assert len(await published(suite)) == count
    table = outbox_tables.dead_letter
    async with suite.groups.state.database.sessionmaker() as session:
        dead = (await session.execute(select(table.c.type))).scalars().all()
    assert dead == ["moderation.group.hidden", "moderation.group.hidden"]


async def test_the_lookup_answers_with_groups_rule_for_the_reader(suite):
    world = await a_group(suite)
    gid, p = world["id"], world["people"]
    dana = await with_personal(suite.client, "dana")
    await suite.deliver()
    secret = await create_group(suite.client, p["ada"][0], "hush", visibility="secret")
    personal = await create_group(suite.client, dana["personal"], "home_club")
    await suite.deliver()

    resp = await lookup(suite, gid, p["eve"][1])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "group_id": gid,
        "context": "professional",
        "name": world["group"]["name"],
        "purpose": world["group"]["purpose"],
        "owner_ids": [p["ada"][1], p["carl"][1]],
        "created_at": resp.json()["created_at"],
    }
    assert datetime.fromisoformat(resp.json()["created_at"]) == datetime.fromisoformat(
        world["group"]["created_at"]
    )
    assert (await lookup(suite, secret["id"], p["ada"][1])).status_code == 200  # a member

    missing = await lookup(suite, str(uuid.uuid4()), p["eve"][1])
    assert problem(missing, 404)
    for group_id, reader in (
        (secret["id"], p["eve"][1]),  # secret, and eve is no member
        (personal["id"], p["eve"][1]),  # the other context
        (gid, dana["personal_id"]),  # the other context, seen from there
        (gid, str(uuid.uuid4())),  # a reader groups does not know
    ):
        same_problem(await lookup(suite, group_id, reader), missing)

    await moderate(suite, moderation_event("hidden", gid))
    same_problem(await lookup(suite, gid, p["bob"][1]), missing)
    assert (await lookup(suite, gid, p["ada"][1])).status_code == 200  # an owner still sees it

    for token in ("", "wrong", p["ada"][0]):
        assert problem(await lookup(suite, gid, p["ada"][1], token=token), 401)
    resp = await suite.client.get(f"{LOOKUP}/{gid}")
    assert problem(resp, 401)
    token = suite.groups.state.settings.internal_token.get_secret_value()
    for params in ({}, {"reader": "nope"}):
        resp = await suite.client.get(f"{LOOKUP}/{gid}", params=params, headers=auth(token))
        assert problem(resp, 422)
    # not routed through the gateway, nor published in groups' contract
    resp = await suite.client.get(f"/internal/moderation/groups/{gid}", params={"reader": p["ada"][1]})
    assert resp.status_code == 404
    assert not any(path.startswith("/internal") for path in suite.groups.openapi()["paths"])


async def test_a_reader_suspended_then_reinstated_is_refused_then_accepted(suite):
    suite.groups.state.principal_check.ttl = 0  # each request reads the replica
    world = await a_group(suite)
    gid, (bob, bob_id) = world["id"], world["people"]["bob"]
    async with suite.groups.state.database.sessionmaker() as session:
        replica = await session.get(PersonaReplica, uuid.UUID(bob_id))
    assert replica is not None

    def persona_updated(status: str, at: datetime) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "type": "persona.updated",
            "source": "identity",
            "subject": bob_id,
            "time": at.isoformat(),
            "data": {
                "id": bob_id,
                "context": "professional",
                "handle": replica.handle,
                "display_name": replica.display_name,
                "status": status,
            },
        }

    now = datetime.now(UTC)
    assert (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(bob))).status_code == 200
    await moderate(suite, persona_updated("suspended", now + timedelta(seconds=1)))
    for method, path in (
        ("GET", f"{GROUPS}/{gid}"),
        ("GET", GROUPS),
        ("DELETE", f"{GROUPS}/{gid}/members/{bob_id}"),
    ):
        resp = await suite.client.request(method, path, headers=auth(bob))
        assert problem(resp, 401)["detail"] == "The token's persona is no longer active."
    assert (await lookup(suite, gid, bob_id)).status_code == 404  # nor reports as a reader

    await moderate(suite, persona_updated("active", now + timedelta(seconds=2)))
    resp = await suite.client.get(f"{GROUPS}/{gid}", headers=auth(bob))
    assert resp.status_code == 200, resp.text
    assert resp.json()["my_role"] == "member"  # a suspension leaves the memberships alone
    assert (await lookup(suite, gid, bob_id)).status_code == 200
