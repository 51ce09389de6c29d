"""Membership flows: open joins, join requests, invitations, removals, roles, the last owner,
and what happens when a persona is deactivated or erased."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.groups.support import GROUPS, join, members, people, problem, published, set_joined_at
from tests.helpers import admin, auth, create_group, with_personal


async def test_open_group_join_is_idempotent_and_leave_removes(suite):
    p = await people(suite, "ada", "bob")
    ada, (bob, bob_id) = p["ada"][0], p["bob"]
    group = await create_group(suite.client, ada, "cloud")
    gid = group["id"]
    first = await join(suite, gid, bob, bob_id)
    assert first.status_code == 201, first.text
    again = await join(suite, gid, bob, bob_id)
    assert again.status_code == 200 and again.json() == first.json()
    assert first.json()["role"] == "member" and first.json()["group_id"] == gid
    got = (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(bob))).json()
    assert got["member_count"] == 2 and got["my_role"] == "member"
    problem(await join(suite, gid, bob, p["ada"][1]), 403)
    assert (
        await suite.client.delete(f"{GROUPS}/{gid}/members/{bob_id}", headers=auth(bob))
    ).status_code == 204
    problem(await suite.client.delete(f"{GROUPS}/{gid}/members/{bob_id}", headers=auth(bob)), 404)
    assert (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(bob))).json()["member_count"] == 1
    events = await published(suite, "membership.added", "membership.removed")
    assert [(t, d["persona_id"], d["role"]) for t, _, d in events] == [
        ("membership.added", p["ada"][1], "owner"),
        ("membership.added", bob_id, "member"),
        ("membership.removed", bob_id, "member"),
    ]
    assert all(s == gid and d["group_id"] == gid and d["context"] == "professional" for _, s, d in events)


async def test_members_list_pages_with_role_and_joined_at(suite):
    p = await people(suite, "ada", "bob", "cyd", "dan")
    ada = p["ada"][0]
    group = await create_group(suite.client, ada, "cloud")
    for h in ("bob", "cyd", "dan"):
        await join(suite, group["id"], *p[h])
    first = await suite.client.get(f"{GROUPS}/{group['id']}/members", params={"limit": 3}, headers=auth(ada))
    body = first.json()
    assert [m["handle"] for m in body["items"]] == ["ada", "bob", "cyd"]
    assert body["items"][0]["role"] == "owner" and body["items"][1]["role"] == "member"
    assert body["items"][0]["display_name"] == "Ada" and body["items"][0]["joined_at"]
    rest = await suite.client.get(
        f"{GROUPS}/{group['id']}/members",
        params={"limit": 3, "cursor": body["next_cursor"]},
        headers=auth(ada),
    )
    assert [m["handle"] for m in rest.json()["items"]] == ["dan"] and rest.json()["next_cursor"] is None
    owners = await suite.client.get(
        f"{GROUPS}/{group['id']}/members", params={"role": "owner"}, headers=auth(ada)
    )
    assert [m["handle"] for m in owners.json()["items"]] == ["ada"]


async def test_my_memberships_in_one_call(suite):
    ada = await with_personal(suite.client, "ada")
    p = await people(suite, "bob")
    bob = p["bob"][0]
    mine = await create_group(suite.client, ada["pro"], "ada_group")
    theirs = await create_group(suite.client, bob, "bob_group")
    await join(suite, theirs["id"], ada["pro"], ada["pro_id"])
    await create_group(suite.client, ada["personal"], "ada_home_group")
    resp = await suite.client.get(f"{GROUPS}/memberships", params={"limit": 1}, headers=auth(ada["pro"]))
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    more = await suite.client.get(
        f"{GROUPS}/memberships",
        params={"limit": 1, "cursor": resp.json()["next_cursor"]},
        headers=auth(ada["pro"]),
    )
    items += more.json()["items"]
    assert more.json()["next_cursor"] is None
    assert [(m["group"]["id"], m["role"]) for m in items] == [(mine["id"], "owner"), (theirs["id"], "member")]
    assert all(m["joined_at"] for m in items)
    home = (await suite.client.get(f"{GROUPS}/memberships", headers=auth(ada["personal"]))).json()["items"]
    assert [m["group"]["handle"] for m in home] == ["ada_home_group"]


async def test_closed_group_join_request_approved_with_message(suite):
    p = await people(suite, "ada", "bob", "mod")
    ada, (bob, bob_id), (mod, mod_id) = p["ada"][0], p["bob"], p["mod"]
    group = await create_group(suite.client, ada, "closed_club", visibility="closed")
    gid = group["id"]
    # the moderator gets in by invitation, then is promoted
    assert (
        await suite.client.post(f"{GROUPS}/{gid}/invitations", json={"persona_id": mod_id}, headers=auth(ada))
    ).status_code == 201
    assert (
        await suite.client.post(f"{GROUPS}/{gid}/invitations/{mod_id}/accept", headers=auth(mod))
    ).status_code == 201
    promoted = await suite.client.patch(
        f"{GROUPS}/{gid}/members/{mod_id}", json={"role": "moderator"}, headers=auth(ada)
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "moderator"

    problem(await join(suite, gid, bob, bob_id), 403)
    problem(await suite.client.get(f"{GROUPS}/{gid}/members", headers=auth(bob)), 403)
    resp = await suite.client.post(
        f"{GROUPS}/{gid}/join-requests", json={"message": "I run the migration squad."}, headers=auth(bob)
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "pending" and resp.json()["message"] == "I run the migration squad."
    again = await suite.client.post(f"{GROUPS}/{gid}/join-requests", json={}, headers=auth(bob))
    assert again.status_code == 200 and again.json()["message"] == "I run the migration squad."
    problem(await suite.client.get(f"{GROUPS}/{gid}/join-requests", headers=auth(bob)), 403)
    own = await suite.client.get(f"{GROUPS}/{gid}/join-requests/{bob_id}", headers=auth(bob))
    assert own.status_code == 200 and own.json()["status"] == "pending"
    pending = (await suite.client.get(f"{GROUPS}/{gid}/join-requests", headers=auth(mod))).json()["items"]
    assert [(r["persona_id"], r["handle"]) for r in pending] == [(bob_id, "bob")]
    problem(await suite.client.post(f"{GROUPS}/{gid}/join-requests/{bob_id}/approve", headers=auth(bob)), 403)
    approved = await suite.client.post(
        f"{GROUPS}/{gid}/join-requests/{bob_id}/approve", json={"message": "Welcome!"}, headers=auth(mod)
    )
    assert approved.status_code == 201, approved.text
    assert approved.json()["persona_id"] == bob_id and approved.json()["role"] == "member"
    twice = await suite.client.post(f"{GROUPS}/{gid}/join-requests/{bob_id}/approve", headers=auth(mod))
    assert problem(twice, 409)["detail"].endswith("approved.")
    decided = (await suite.client.get(f"{GROUPS}/{gid}/join-requests/{bob_id}", headers=auth(bob))).json()
    assert decided["status"] == "approved" and decided["response"] == "Welcome!"
    assert await members(suite, gid, bob) == {p["ada"][1]: "owner", mod_id: "moderator", bob_id: "member"}
    problem(await suite.client.post(f"{GROUPS}/{gid}/join-requests", json={}, headers=auth(bob)), 409)


async def test_join_request_rejected_then_renewed_or_withdrawn(suite):
    p = await people(suite, "ada", "bob")
    ada, (bob, bob_id) = p["ada"][0], p["bob"]
    group = await create_group(suite.client, ada, "closed_club", visibility="closed")
    gid = group["id"]
    await suite.client.post(f"{GROUPS}/{gid}/join-requests", json={"message": "Please"}, headers=auth(bob))
    rejected = await suite.client.post(
        f"{GROUPS}/{gid}/join-requests/{bob_id}/reject", json={"message": "Managers only."}, headers=auth(ada)
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["response"] == "Managers only."
    assert (await suite.client.get(f"{GROUPS}/{gid}/join-requests", headers=auth(ada))).json()["items"] == []
    listed = await suite.client.get(
        f"{GROUPS}/{gid}/join-requests", params={"status": "rejected"}, headers=auth(ada)
    )
    assert [r["persona_id"] for r in listed.json()["items"]] == [bob_id]
    renewed = await suite.client.post(
        f"{GROUPS}/{gid}/join-requests", json={"message": "Promoted now"}, headers=auth(bob)
    )
    assert (
        renewed.status_code == 201
        and renewed.json()["status"] == "pending"
        and renewed.json()["response"] is None
    )
    problem(await suite.client.delete(f"{GROUPS}/{gid}/join-requests/{bob_id}", headers=auth(ada)), 403)
    assert (
        await suite.client.delete(f"{GROUPS}/{gid}/join-requests/{bob_id}", headers=auth(bob))
    ).status_code == 204
    problem(await suite.client.post(f"{GROUPS}/{gid}/join-requests/{bob_id}/approve", headers=auth(ada)), 409)
    assert await members(suite, gid, ada) == {p["ada"][1]: "owner"}


async def test_join_requests_are_for_closed_groups_only(suite):
    p = await people(suite, "ada", "bob")
    ada, bob = p["ada"][0], p["bob"][0]
    open_group = await create_group(suite.client, ada, "open_club")
    problem(
        await suite.client.post(f"{GROUPS}/{open_group['id']}/join-requests", json={}, headers=auth(bob)), 409
    )
    problem(
        await suite.client.post(
            f"{GROUPS}/{open_group['id']}/join-requests", json={"message": "x" * 501}, headers=auth(bob)
        ),
        422,
    )
    problem(
        await suite.client.get(f"{GROUPS}/{open_group['id']}/join-requests/{p['bob'][1]}", headers=auth(bob)),
        404,
    )


async def test_secret_group_invitation_accepted_or_declined(suite):
    p = await people(suite, "ada", "bob", "cyd")
    ada, (bob, bob_id), (cyd, cyd_id) = p["ada"][0], p["bob"], p["cyd"]
    group = await create_group(suite.client, ada, "hush", visibility="secret")
    gid = group["id"]
    problem(await suite.client.get(f"{GROUPS}/{gid}", headers=auth(bob)), 404)
    problem(await suite.client.post(f"{GROUPS}/{gid}/join-requests", json={}, headers=auth(bob)), 404)
    for invitee in (bob_id, cyd_id):
        resp = await suite.client.post(
            f"{GROUPS}/{gid}/invitations",
            json={"persona_id": invitee, "message": "Join us"},
            headers=auth(ada),
        )
        assert resp.status_code == 201, resp.text
    repeat = await suite.client.post(
        f"{GROUPS}/{gid}/invitations", json={"persona_id": bob_id}, headers=auth(ada)
    )
    assert repeat.status_code == 200
    mine = (await suite.client.get(f"{GROUPS}/invitations", headers=auth(bob))).json()["items"]
    assert [(i["group"]["handle"], i["message"], i["invited_by"]) for i in mine] == [
        ("hush", "Join us", p["ada"][1])
    ]
    # invited, bob sees the group but not its members
    assert (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(bob))).status_code == 200
    problem(await suite.client.get(f"{GROUPS}/{gid}/members", headers=auth(bob)), 403)
    problem(await suite.client.post(f"{GROUPS}/{gid}/invitations/{bob_id}/accept", headers=auth(cyd)), 403)
    problem(
        await suite.client.post(
            f"{GROUPS}/{gid}/invitations", json={"persona_id": cyd_id}, headers=auth(bob)
        ),
        403,
    )
    accepted = await suite.client.post(f"{GROUPS}/{gid}/invitations/{bob_id}/accept", headers=auth(bob))
    assert accepted.status_code == 201 and accepted.json()["role"] == "member"
    declined = await suite.client.post(f"{GROUPS}/{gid}/invitations/{cyd_id}/decline", headers=auth(cyd))
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    problem(await suite.client.get(f"{GROUPS}/{gid}", headers=auth(cyd)), 404)
    assert (await suite.client.get(f"{GROUPS}/invitations", headers=auth(bob))).json()["items"] == []
    assert await members(suite, gid, bob) == {p["ada"][1]: "owner", bob_id: "member"}
    listed = await suite.client.get(
        f"{GROUPS}/{gid}/invitations", params={"status": "declined"}, headers=auth(ada)
    )
    assert [i["persona_id"] for i in listed.json()["items"]] == [cyd_id]
    problem(
        await suite.client.post(
            f"{GROUPS}/{gid}/invitations", json={"persona_id": bob_id}, headers=auth(ada)
        ),
        409,
    )


async def test_invitation_to_unknown_or_other_context_persona_is_404(suite):
    ada = await with_personal(suite.client, "ada")
    p = await people(suite, "bob")
    group = await create_group(suite.client, p["bob"][0], "hush", visibility="secret")

    for persona_id in (str(uuid.uuid4()), ada["personal_id"]):
        resp = await suite.client.post(
            f"{GROUPS}/{group['id']}/invitations", json={"persona_id": persona_id}, headers=auth(p["bob"][0])
        )
        problem(resp, 404)


async def test_revoked_invitation_cannot_be_accepted(suite):
    p = await people(suite, "ada", "bob")
    ada, (bob, bob_id) = p["ada"][0], p["bob"]
    group = await create_group(suite.client, ada, "hush", visibility="secret")
    gid = group["id"]
    await suite.client.post(f"{GROUPS}/{gid}/invitations", json={"persona_id": bob_id}, headers=auth(ada))
    assert (
        await suite.client.delete(f"{GROUPS}/{gid}/invitations/{bob_id}", headers=auth(ada))
    ).status_code == 204
    problem(await suite.client.post(f"{GROUPS}/{gid}/invitations/{bob_id}/accept", headers=auth(bob)), 404)


async def test_moderators_remove_members_owners_remove_anyone(suite):
    p = await people(suite, "ada", "bob", "mod", "mod2")
    ada, (bob, bob_id), (mod, mod_id), (_mod2, mod2_id) = p["ada"][0], p["bob"], p["mod"], p["mod2"]
    group = await create_group(suite.client, ada, "cloud")
    gid = group["id"]
    for h in ("bob", "mod", "mod2"):
        await join(suite, gid, *p[h])
    for m in (mod_id, mod2_id):
        await suite.client.patch(f"{GROUPS}/{gid}/members/{m}", json={"role": "moderator"}, headers=auth(ada))
    problem(await suite.client.delete(f"{GROUPS}/{gid}/members/{mod_id}", headers=auth(bob)), 403)
    problem(
        await suite.client.patch(
            f"{GROUPS}/{gid}/members/{bob_id}", json={"role": "owner"}, headers=auth(mod)
        ),
        403,
    )
    problem(await suite.client.delete(f"{GROUPS}/{gid}/members/{mod2_id}", headers=auth(mod)), 403)
    problem(await suite.client.delete(f"{GROUPS}/{gid}/members/{p['ada'][1]}", headers=auth(mod)), 403)
    assert (
        await suite.client.delete(f"{GROUPS}/{gid}/members/{bob_id}", headers=auth(mod))
    ).status_code == 204
    problem(await suite.client.delete(f"{GROUPS}/{gid}/members/{bob_id}", headers=auth(mod)), 404)
    assert (
        await suite.client.delete(f"{GROUPS}/{gid}/members/{mod2_id}", headers=auth(ada))
    ).status_code == 204
    assert await members(suite, gid, ada) == {p["ada"][1]: "owner", mod_id: "moderator"}
    assert (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(ada))).json()["member_count"] == 2
    problem(
        await suite.client.patch(
            f"{GROUPS}/{gid}/members/{mod_id}", json={"role": "king"}, headers=auth(ada)
        ),
        422,
    )


async def test_last_owner_hands_over_before_leaving(suite):
    p = await people(suite, "ada", "bob")
    (ada, ada_id), (bob, bob_id) = p["ada"], p["bob"]
    group = await create_group(suite.client, ada, "cloud")
    gid = group["id"]
    await join(suite, gid, bob, bob_id)
    leave = await suite.client.delete(f"{GROUPS}/{gid}/members/{ada_id}", headers=auth(ada))
    assert problem(leave, 409)["type"].endswith("last-owner")
    problem(
        await suite.client.patch(
            f"{GROUPS}/{gid}/members/{ada_id}", json={"role": "member"}, headers=auth(ada)
        ),
        409,
    )
    handed = await suite.client.patch(
        f"{GROUPS}/{gid}/members/{bob_id}", json={"role": "owner"}, headers=auth(ada)
    )
    assert handed.status_code == 200 and handed.json()["role"] == "owner"
    assert (
        await suite.client.delete(f"{GROUPS}/{gid}/members/{ada_id}", headers=auth(ada))
    ).status_code == 204
    assert await members(suite, gid, bob) == {bob_id: "owner"}
    updated = await published(suite, "membership.updated")
    assert [(d["persona_id"], d["role"]) for _, _, d in updated] == [(bob_id, "owner")]


async def test_deactivated_last_owner_is_succeeded_by_longest_standing_moderator(suite):
    root, _ = await admin(suite)
    p = await people(suite, "ada", "old_member", "new_mod", "old_mod")
    ada, ada_id = p["ada"]
    group = await create_group(suite.client, ada, "cloud", charter={"stewards": []})
    other = await create_group(suite.client, ada, "solo")
    gid = group["id"]
    for h in ("old_member", "old_mod", "new_mod"):
        await join(suite, gid, *p[h])
    for h in ("old_mod", "new_mod"):
        await suite.client.patch(
            f"{GROUPS}/{gid}/members/{p[h][1]}", json={"role": "moderator"}, headers=auth(ada)
        )
    now = datetime.now(UTC)
    await set_joined_at(suite, gid, p["old_member"][1], now - timedelta(days=300))
    await set_joined_at(suite, gid, p["old_mod"][1], now - timedelta(days=200))
    await set_joined_at(suite, gid, p["new_mod"][1], now - timedelta(days=100))

    accounts = await suite.client.get("/api/v1/admin/accounts", params={"q": "ada@"}, headers=auth(root))
    account_id = accounts.json()["items"][0]["id"]
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"status": "deactivated", "reason": "Left the organisation."},
        headers=auth(root),
    )
    assert resp.status_code == 200, resp.text
    await suite.deliver()

    old_mod = p["old_mod"][0]
    assert await members(suite, gid, old_mod) == {
        p["old_member"][1]: "member",
        p["old_mod"][1]: "owner",
        p["new_mod"][1]: "moderator",
    }
    got = (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(old_mod))).json()
    assert got["member_count"] == 3 and got["charter"]["stewards"] == [p["old_mod"][1]]
    events = [
        (t, d["persona_id"], d["role"])
        for t, s, d in await published(suite, "membership.updated", "membership.removed")
        if s == gid
    ][-2:]
    assert events == [
        ("membership.updated", p["old_mod"][1], "owner"),
        ("membership.removed", ada_id, "owner"),
    ]
    # the group nobody else was in is archived rather than left without an owner
    solo = await suite.client.get(f"{GROUPS}/{other['id']}", headers=auth(old_mod))
    assert solo.json()["archived_at"] is not None and solo.json()["member_count"] == 0


async def test_erased_persona_leaves_its_groups_and_a_member_takes_over(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    group = await create_group(suite.client, ada["personal"], "knitting")
    gid = group["id"]
    await join(suite, gid, bob["personal"], bob["personal_id"])
    resp = await suite.client.delete("/api/v1/me/personas/personal", headers=auth(ada["pro"]))
    assert resp.status_code == 204, resp.text
    await suite.deliver()
    assert await members(suite, gid, bob["personal"]) == {bob["personal_id"]: "owner"}
    events = [
        (t, d["persona_id"], d["role"])
        for t, s, d in await published(suite, "membership.updated", "membership.removed")
        if s == gid
    ][-2:]
    assert events == [
        ("membership.updated", bob["personal_id"], "owner"),
        ("membership.removed", ada["personal_id"], "owner"),
    ]


async def test_joins_per_hour_are_limited(suite):
    suite.groups.state.settings.joins_per_hour = 3
    p = await people(suite, "ada", "bob")
    ada, (bob, bob_id) = p["ada"][0], p["bob"]
    groups = [await create_group(suite.client, ada, f"g_{i}") for i in range(3)]
    closed = await create_group(suite.client, ada, "closed_g", visibility="closed")
    for g in groups[:2]:
        assert (await join(suite, g["id"], bob, bob_id)).status_code == 201
    assert (
        await suite.client.post(f"{GROUPS}/{closed['id']}/join-requests", json={}, headers=auth(bob))
    ).status_code == 201
    limited = await join(suite, groups[2]["id"], bob, bob_id)
    problem(limited, 429)
    assert 3000 < int(limited.headers["retry-after"]) <= 3601
    # joining again where one is a member already is no new join
    assert (await join(suite, groups[0]["id"], bob, bob_id)).status_code == 200


async def test_deactivated_steward_leaves_the_charter(suite):
    root, _ = await admin(suite)
    p = await people(suite, "ada", "bob")
    ada, bob_id = p["ada"][0], p["bob"][1]
    group = await create_group(suite.client, ada, "cloud", charter={"stewards": [bob_id]})
    assert group["charter"]["stewards"] == [bob_id]
    accounts = await suite.client.get("/api/v1/admin/accounts", params={"q": "bob@"}, headers=auth(root))
    await suite.client.patch(
        f"/api/v1/admin/accounts/{accounts.json()['items'][0]['id']}",
        json={"status": "deactivated", "reason": "Left the organisation."},
        headers=auth(root),
    )
    await suite.deliver()
    got = (await suite.client.get(f"{GROUPS}/{group['id']}", headers=auth(ada))).json()
    assert got["charter"]["stewards"] == [p["ada"][1]]


async def test_suspended_persona_token_is_refused_by_groups(suite):
    root, _ = await admin(suite)
    p = await people(suite, "bob")
    accounts = await suite.client.get("/api/v1/admin/accounts", params={"q": "bob@"}, headers=auth(root))
    await suite.client.patch(
        f"/api/v1/admin/accounts/{accounts.json()['items'][0]['id']}",
        json={"status": "suspended", "reason": "Investigation."},
        headers=auth(root),
    )
    await suite.deliver()
    resp = await suite.client.get(f"http://groups{GROUPS}", headers=auth(p["bob"][0]))
    assert resp.status_code == 401, resp.text
