"""The review queue: who reaches it, its order, filters and cursors, a report's review, a
group's queue for its owners and moderators, and assigning, unassigning and reopening."""

from __future__ import annotations

import uuid
from typing import Any

from services.moderation.models import Action
from tests.helpers import auth, with_personal
from tests.moderation.support import (
    QUEUE,
    file,
    filed,
    group,
    people,
    post,
    problem,
    published,
    queue,
    resolve,
    rows,
    same_problem,
    staff,
)
from tests.tokens import claims, sign

GROUPS = "/api/v1/groups"


async def test_the_queue_lists_oldest_first_with_its_filters_and_cursors(suite):
    p = await people(suite, "ada", "bob", "cyd")
    (ada, _), (bob, bob_id), (cyd, cyd_id) = p["ada"], p["bob"], p["cyd"]
    twin = await with_personal(suite.client, "eve")
    other = await with_personal(suite.client, "fay")
    await suite.deliver()
    mod, mod_id = await staff(suite, "mo")
    written = await post(suite, bob, "A post somebody will report")
    made = [
        await filed(suite, ada, "persona", bob_id, category="spam"),
        await filed(suite, ada, "post", written["id"], category="harassment"),
        await filed(suite, cyd, "persona", bob_id, category="spam"),
        await filed(suite, bob, "persona", cyd_id, category="privacy"),
        await filed(suite, twin["personal"], "persona", other["personal_id"], category="spam"),
    ]
    ids = [r["id"] for r in made]
    assigned = await suite.client.post(f"{QUEUE}/{ids[2]}/assign", headers=auth(mod))
    assert assigned.status_code == 200 and assigned.json()["assignee_id"] == mod_id
    assert (await resolve(suite, mod, ids[3], "none")).status_code == 200

    assert [r["id"] for r in await queue(suite, mod, limit=2)] == ids
    assert [r["id"] for r in await queue(suite, mod, status="open")] == [ids[0], ids[1], ids[4]]
    assert [r["id"] for r in await queue(suite, mod, status="assigned")] == [ids[2]]
    assert [r["id"] for r in await queue(suite, mod, status="resolved")] == [ids[3]]
    assert [r["id"] for r in await queue(suite, mod, category="spam")] == [ids[0], ids[2], ids[4]]
    assert [r["id"] for r in await queue(suite, mod, target_type="post")] == [ids[1]]
    personal = await queue(suite, mod, context="personal")
    assert [r["id"] for r in personal] == [ids[4]] and personal[0]["context"] == "personal"
    assert [r["id"] for r in await queue(suite, mod, assignee="me")] == [ids[2]]
    assert [r["id"] for r in await queue(suite, mod, status="open", category="spam", limit=1)] == [
        ids[0],
        ids[4],
    ]

    page = await suite.client.get(QUEUE, params={"limit": 2}, headers=auth(mod))
    assert page.headers["link"].endswith('rel="next"')
    for bad in ("nonsense", page.json()["next_cursor"][:-2]):
        problem(await suite.client.get(QUEUE, params={"cursor": bad}, headers=auth(mod)), 400, "bad-cursor")
    for params in ({"status": "lost"}, {"assignee": "you"}, {"context": "work"}, {"limit": 0}):
        problem(await suite.client.get(QUEUE, params=params, headers=auth(mod)), 422, "validation")


async def test_the_queue_is_for_staff_through_their_professional_persona(suite):
    p = await people(suite, "ada", "bob")
    (ada, ada_id), (_, bob_id) = p["ada"], p["bob"]
    await filed(suite, ada, "persona", bob_id)
    problem(await suite.client.get(QUEUE, headers=auth(ada)), 403, "not-a-moderator")
    # a role in the token that moderation's replica does not hold
    claimed = sign(suite.keys.active, claims(ada_id, roles=["moderator", "admin"]))
    problem(await suite.client.get(QUEUE, headers=auth(claimed)), 403, "not-a-moderator")
    # a role holder using a personal persona gets what anyone gets
    twin = await with_personal(suite.client, "moe")
    await suite.deliver()
    mod, mod_id = await staff(suite, "mod")
    personal = sign(suite.keys.active, claims(twin["personal_id"], ctx="personal", roles=["moderator"]))
    problem(await suite.client.get(QUEUE, headers=auth(personal)), 403, "not-a-moderator")
    # a moderator's token without the role it once had
    stale = sign(suite.keys.active, claims(mod_id, roles=[]))
    problem(await suite.client.get(QUEUE, headers=auth(stale)), 403, "not-a-moderator")
    assert len(await queue(suite, mod)) == 1
    client = sign(suite.keys.active, claims(None, sub="client-1", ctx=None, client_id="client-1"))
    problem(await suite.client.get(QUEUE, headers=auth(client)), 403)


async def test_a_role_removed_at_identity_loses_the_queue_at_the_next_request(suite):
    p = await people(suite, "ada", "bob")
    await filed(suite, p["ada"][0], "persona", p["bob"][1])
    root, _ = await staff(suite, "root", "admin")
    mod, mod_id = await staff(suite, "mo")
    assert len(await queue(suite, mod)) == 1
    account = await _account_of(suite, root, mod_id)
    changed = await suite.client.patch(
        f"/api/v1/admin/accounts/{account}",
        json={"roles": [], "reason": "Moved to another team."},
        headers=auth(root),
    )
    assert changed.status_code == 200, changed.text
    await suite.deliver()
    # the same token, still claiming the role
    problem(await suite.client.get(QUEUE, headers=auth(mod)), 403, "not-a-moderator")


async def _account_of(suite: Any, admin: str, persona_id: str) -> str:
    """The account of a professional persona, as an administrator finds it."""
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        resp = await suite.client.get("/api/v1/admin/accounts", params=params, headers=auth(admin))
        assert resp.status_code == 200, resp.text
        for account in resp.json()["items"]:
            if (account["professional"] or {}).get("id") == persona_id:
                return str(account["id"])
        cursor = resp.json()["next_cursor"]
        assert cursor, "no such account"


async def test_a_review_holds_the_evidence_the_personas_and_the_actions(suite):
    p = await people(suite, "ada", "bob")
    (ada, ada_id), (bob, bob_id) = p["ada"], p["bob"]
    mod, mod_id = await staff(suite, "mo")
    written = await post(suite, bob, "A post somebody will report")
    report = await filed(suite, ada, "post", written["id"], comment="Look at this.")
    await suite.client.post(f"{QUEUE}/{report['id']}/assign", headers=auth(mod))
    resp = await suite.client.get(f"{QUEUE}/{report['id']}", headers=auth(mod))
    assert resp.status_code == 200, resp.text
    review = resp.json()
    assert review["target"]["author"]["id"] == bob_id and review["target"]["author"]["handle"]
    assert review["reporter"]["id"] == ada_id and review["assignee"]["id"] == mod_id
    assert review["comment"] == "Look at this." and review["status"] == "assigned"
    assert [e["body"] for e in review["evidence"]] == [written["body"]]
    assert review["actions"] == []
    done = await resolve(suite, mod, report["id"], "lock")
    assert done.status_code == 200, done.text
    assert [a["kind"] for a in done.json()["actions"]] == ["lock"]
    assert done.json()["actions"][0]["moderator_id"] == mod_id
    problem(await suite.client.get(f"{QUEUE}/{uuid.uuid4()}", headers=auth(mod)), 404)
    # not a moderator: the report does not exist
    same_problem(
        await suite.client.get(f"{QUEUE}/{report['id']}", headers=auth(ada)),
        await suite.client.get(f"{QUEUE}/{uuid.uuid4()}", headers=auth(ada)),
    )


async def _group_with_roles(suite: Any) -> dict[str, Any]:
    """A group owned by bob, moderated by cyd, with dan and ada as members; dan posts in it."""
    p = await people(suite, "ada", "bob", "cyd", "dan", "eve")
    bob = p["bob"][0]
    made = await group(suite, bob)
    for name in ("cyd", "dan", "ada"):
        token, persona_id = p[name]
        joined = await suite.client.put(f"{GROUPS}/{made['id']}/members/{persona_id}", headers=auth(token))
        assert joined.status_code == 201, joined.text
    promoted = await suite.client.patch(
        f"{GROUPS}/{made['id']}/members/{p['cyd'][1]}", json={"role": "moderator"}, headers=auth(bob)
    )
    assert promoted.status_code == 200, promoted.text
    await suite.deliver()
    inside = await post(suite, p["dan"][0], "A post inside the group", audience="group", group_id=made["id"])
    outside = await post(suite, p["dan"][0], "A post for the whole organisation")
    return {"people": p, "group": made, "inside": inside, "outside": outside}


async def test_a_group_queue_is_for_its_owners_and_moderators_and_staff(suite):
    g = await _group_with_roles(suite)
    p, made = g["people"], g["group"]
    ada = p["ada"][0]
    mod, _ = await staff(suite, "mo")
    inside = await filed(suite, ada, "post", g["inside"]["id"])
    outside = await filed(suite, ada, "post", g["outside"]["id"])
    about_group = await filed(suite, p["eve"][0], "group", made["id"])
    path = f"{GROUPS}/{made['id']}/reports"
    for name in ("bob", "cyd"):
        listed = await queue(suite, p[name][0], path)
        assert [r["id"] for r in listed] == [inside["id"]], name
        assert listed[0]["group_id"] == made["id"]
    assert [r["id"] for r in await queue(suite, mod, path)] == [inside["id"]]
    assert {r["id"] for r in await queue(suite, mod)} == {inside["id"], outside["id"], about_group["id"]}
    missing = await suite.client.get(f"{GROUPS}/{uuid.uuid4()}/reports", headers=auth(p["bob"][0]))
    problem(missing, 404)
    for name in ("dan", "ada", "eve"):
        same_problem(await suite.client.get(path, headers=auth(p[name][0])), missing)
    # a group's roles reach the reports of its content, and only those
    cyd = p["cyd"][0]
    assert (await suite.client.get(f"{QUEUE}/{inside['id']}", headers=auth(cyd))).status_code == 200
    for other in (outside, about_group):
        problem(await suite.client.get(f"{QUEUE}/{other['id']}", headers=auth(cyd)), 404)
    problem(await suite.client.get(QUEUE, headers=auth(cyd)), 403, "not-a-moderator")
    assert (await suite.client.post(f"{QUEUE}/{inside['id']}/assign", headers=auth(cyd))).status_code == 200
    assert (await resolve(suite, cyd, inside["id"], "none")).status_code == 200
    problem(
        await suite.client.post(f"{QUEUE}/{inside['id']}/reopen", headers=auth(cyd)), 403, "not-a-moderator"
    )
    assert (await suite.client.post(f"{QUEUE}/{inside['id']}/reopen", headers=auth(mod))).status_code == 200
    # the role goes with the membership
    demoted = await suite.client.patch(
        f"{GROUPS}/{made['id']}/members/{p['cyd'][1]}", json={"role": "member"}, headers=auth(p["bob"][0])
    )
    assert demoted.status_code == 200, demoted.text
    await suite.deliver()
    same_problem(await suite.client.get(path, headers=auth(cyd)), missing)
    problem(await suite.client.get(f"{QUEUE}/{inside['id']}", headers=auth(cyd)), 404)


async def test_assign_unassign_and_reopen_change_the_report_once(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (_, bob_id) = p["ada"], p["bob"]
    one, one_id = await staff(suite, "one")
    two, _ = await staff(suite, "two")
    root, _ = await staff(suite, "root", "admin")
    report = await filed(suite, ada, "persona", bob_id)
    at = f"{QUEUE}/{report['id']}"

    problem(await suite.client.post(f"{at}/unassign", headers=auth(one)), 409, "report-not-assigned")
    took = await suite.client.post(f"{at}/assign", headers=auth(one))
    assert took.status_code == 200 and took.json()["status"] == "assigned"
    again = await suite.client.post(f"{at}/assign", headers=auth(one))
    assert again.status_code == 200 and again.json()["version"] == took.json()["version"]
    problem(await suite.client.post(f"{at}/assign", headers=auth(two)), 409, "report-assigned")
    problem(await resolve(suite, two, report["id"], "none"), 409, "report-assigned")
    problem(await suite.client.post(f"{at}/unassign", headers=auth(two)), 409, "report-assigned")
    freed = await suite.client.post(f"{at}/unassign", headers=auth(root))
    assert (
        freed.status_code == 200 and freed.json()["status"] == "open" and freed.json()["assignee_id"] is None
    )
    assert (await suite.client.post(f"{at}/assign", headers=auth(two))).status_code == 200
    assert (await suite.client.post(f"{at}/unassign", headers=auth(two))).status_code == 200

    seen = (await suite.client.get(at, headers=auth(one))).json()["version"]
    assert (await suite.client.post(f"{at}/assign", headers=auth(one))).status_code == 200
    problem(await resolve(suite, one, report["id"], "warn", version=seen), 409, "report-changed")
    problem(await suite.client.post(f"{at}/reopen", headers=auth(one)), 409, "report-not-resolved")
    done = await resolve(suite, one, report["id"], "warn")
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    for verb in ("assign", "unassign"):
        problem(await suite.client.post(f"{at}/{verb}", headers=auth(two)), 409, "report-resolved")
    problem(await resolve(suite, two, report["id"], "none"), 409, "report-resolved")

    reopened = await suite.client.post(f"{at}/reopen", headers=auth(two))
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "open" and reopened.json()["action"] is None
    (action,) = await rows(suite, Action)
    assert action.kind == "warn" and action.reverted_at is None  # the action stays in force
    assert len(await published(suite, "moderation.persona.warned")) == 1
    assert (await resolve(suite, two, report["id"], "none")).status_code == 200
    assert [a.kind for a in sorted(await rows(suite, Action), key=lambda a: a.created_at)] == ["warn", "none"]
    assert (await file(suite, ada, "persona", bob_id)).status_code == 201
    assert one_id


async def test_no_one_sees_or_decides_a_report_about_itself(suite):
    g = await _group_with_roles(suite)
    p, made = g["people"], g["group"]
    ada, eve = p["ada"][0], p["eve"][0]
    cyd, bob = p["cyd"][0], p["bob"][0]
    mod, mod_id = await staff(suite, "mo")
    other, _ = await staff(suite, "other")
    # the group's moderator wrote the post reported: the owner decides, the moderator never
    # learns who reported it
    by_cyd = await post(suite, cyd, "The moderator's own post", audience="group", group_id=made["id"])
    about_cyd = await filed(suite, ada, "post", by_cyd["id"])
    path = f"{GROUPS}/{made['id']}/reports"
    assert [r["id"] for r in await queue(suite, cyd, path)] == []
    assert [r["id"] for r in await queue(suite, bob, path)] == [about_cyd["id"]]
    problem(await suite.client.post(f"{QUEUE}/{about_cyd['id']}/assign", headers=auth(cyd)), 404)
    problem(await resolve(suite, cyd, about_cyd["id"], "none"), 404)
    problem(await suite.client.get(f"{QUEUE}/{about_cyd['id']}", headers=auth(cyd)), 404)
    # nor does staff: a moderator reported, or the owner of a group reported
    about_mod = await filed(suite, eve, "persona", mod_id)
    assert about_mod["id"] not in {r["id"] for r in await queue(suite, mod)}
    problem(await suite.client.get(f"{QUEUE}/{about_mod['id']}", headers=auth(mod)), 404)
    problem(await resolve(suite, mod, about_mod["id"], "none"), 404)
    assert about_mod["id"] in {r["id"] for r in await queue(suite, other)}
    staff_group = await group(suite, mod, "staffroom")
    about_group = await filed(suite, eve, "group", staff_group["id"])
    assert about_group["id"] not in {r["id"] for r in await queue(suite, mod)}
    problem(await suite.client.get(f"{QUEUE}/{about_group['id']}", headers=auth(mod)), 404)
    review = await suite.client.get(f"{QUEUE}/{about_group['id']}", headers=auth(other))
    assert review.status_code == 200 and review.json()["reporter"]["id"] == p["eve"][1]
    assert set(review.json()["reporter"]) == {"id", "handle"}
