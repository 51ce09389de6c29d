"""Appeals: one per notice, before its deadline, decided by another moderator than the one
who acted; upholding it reverts the action once, everywhere its owners applied it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from services.moderation import actions
from services.moderation.models import Action, Notice, Report
from tests.helpers import auth
from tests.moderation.support import (
    NOTICES,
    QUEUE,
    filed,
    group,
    people,
    post,
    problem,
    published,
    queue,
    resolve,
    rows,
    staff,
)

GROUPS = "/api/v1/groups"


async def _appeal(
    suite: Any, token: str, notice_id: str, text: str = "I did nothing wrong, look again."
) -> Any:
    return await suite.client.post(f"{NOTICES}/{notice_id}/appeal", json={"text": text}, headers=auth(token))


async def _notice(suite: Any, token: str) -> dict[str, Any]:
    resp = await suite.client.get(NOTICES, headers=auth(token))
    assert resp.status_code == 200, resp.text
    (notice,) = resp.json()["items"]
    found: dict[str, Any] = notice
    return found


async def test_an_upheld_appeal_is_decided_by_another_moderator_and_reverts_the_action(suite):
    p = await people(suite, "ada", "bob", "cyd")
    (ada, _), (bob, bob_id), (cyd, _) = p["ada"], p["bob"], p["cyd"]
    one, one_id = await staff(suite, "one")
    two, two_id = await staff(suite, "two")
    written = await post(suite, bob, "A post hidden by mistake")
    report = await filed(suite, ada, "post", written["id"])
    hidden = await resolve(suite, one, report["id"], "hide")
    (action,) = hidden.json()["actions"]
    await suite.deliver()
    problem(await suite.client.get(f"/api/v1/posts/{written['id']}", headers=auth(cyd)), 404)

    notice = await _notice(suite, bob)
    appealed = await _appeal(suite, bob, notice["id"])
    assert appealed.status_code == 201, appealed.text
    assert appealed.headers["location"] == f"{NOTICES}/{notice['id']}"
    appeal = appealed.json()["appeal"]
    assert appeal["status"] == "open" and appeal["outcome"] is None
    (listed,) = [r for r in await queue(suite, two) if r["kind"] == "appeal"]
    assert listed["id"] == appeal["id"] and listed["appeal_of"] == action["id"]
    assert listed["target"] == {"type": "post", "id": written["id"]} and listed["subject_id"] == bob_id
    review = (await suite.client.get(f"{QUEUE}/{appeal['id']}", headers=auth(two))).json()
    assert review["comment"] == "I did nothing wrong, look again." and review["reporter"]["id"] == bob_id

    problem(
        await suite.client.post(f"{QUEUE}/{appeal['id']}/assign", headers=auth(one)),
        403,
        "appeal-same-moderator",
    )
    problem(await resolve(suite, one, appeal["id"], "revert"), 403, "appeal-same-moderator")
    problem(await resolve(suite, two, appeal["id"], "hide"), 422, "action-not-applicable")
    reverted = await resolve(suite, two, appeal["id"], "revert")
    assert reverted.status_code == 200, reverted.text

    (row,) = await rows(suite, Action, id=uuid.UUID(action["id"]))
    assert row.reverted_at is not None and str(row.reverted_by) == two_id
    ((_, subject, restored),) = await published(suite, "moderation.content.restored")
    assert subject == written["id"] and restored["action_id"] == action["id"]
    audits = [d for _, _, d in await published(suite, "internal.moderation.audit")]
    assert [(a["kind"], a["moderator_id"]) for a in audits] == [("hide", one_id), ("revert", two_id)]
    decided = await _notice(suite, bob)
    assert decided["appeal"]["status"] == "resolved" and decided["appeal"]["outcome"] == "reverted"
    assert one_id not in str(decided) and two_id not in str(decided)
    await suite.deliver()
    back = await suite.client.get(f"/api/v1/posts/{written['id']}", headers=auth(cyd))
    assert back.status_code == 200, back.text


async def test_an_appeal_rejected_leaves_the_action_in_force(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (bob, bob_id) = p["ada"], p["bob"]
    one, _ = await staff(suite, "one")
    two, _ = await staff(suite, "two")
    report = await filed(suite, ada, "persona", bob_id)
    until = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None).isoformat()  # read as UTC
    limited = await resolve(suite, one, report["id"], "limit", until=until)
    assert limited.status_code == 200, limited.text
    assert limited.json()["actions"][0]["until"].startswith(until[:19])
    notice = await _notice(suite, bob)
    appeal = (await _appeal(suite, bob, notice["id"])).json()["appeal"]
    assert (await resolve(suite, two, appeal["id"], "none")).status_code == 200
    assert (await _notice(suite, bob))["appeal"]["outcome"] == "upheld"
    assert all(a.reverted_at is None for a in await rows(suite, Action))
    assert not await published(suite, "moderation.persona.unlimited")
    problem(await _appeal(suite, bob, notice["id"]), 409, "appeal-exists")


async def test_one_appeal_per_notice_before_its_deadline_and_nothing_written_on_refusal(suite):
    p = await people(suite, "ada", "bob")
    (ada, ada_id), (bob, bob_id) = p["ada"], p["bob"]
    mod, _ = await staff(suite, "mo")
    first = await filed(suite, ada, "persona", bob_id)
    second = await filed(suite, bob, "persona", ada_id)
    assert (await resolve(suite, mod, first["id"], "warn")).status_code == 200
    assert (await resolve(suite, mod, second["id"], "warn")).status_code == 200
    notice = await _notice(suite, bob)
    ada_notice = await _notice(suite, ada)

    for text in ("", "   ", "x" * 2001, "bad\x00byte"):
        problem(await _appeal(suite, bob, notice["id"], text), 422, "validation")
    problem(await _appeal(suite, bob, ada_notice["id"]), 404)  # another persona's notice
    problem(await _appeal(suite, bob, str(uuid.uuid4())), 404)
    async with suite.moderation.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Notice)
            .where(Notice.id == uuid.UUID(ada_notice["id"]))  # type: ignore[arg-type]
            .values(appeal_by=datetime.now(UTC) - timedelta(seconds=1))
        )
    problem(await _appeal(suite, ada, ada_notice["id"]), 409, "appeal-closed")
    assert not [r for r in await rows(suite, Report) if r.kind == "appeal"]

    assert (await _appeal(suite, bob, notice["id"])).status_code == 201
    problem(await _appeal(suite, bob, notice["id"]), 409, "appeal-exists")
    assert len([r for r in await rows(suite, Report) if r.kind == "appeal"]) == 1
    created = [d for _, _, d in await published(suite, "moderation.report.created") if d["kind"] == "appeal"]
    assert len(created) == 1 and bob_id == created[0]["subject_id"]
    # an appeal is staff's: a group's role never sees it
    (appeal,) = [r for r in await rows(suite, Report) if r.kind == "appeal"]
    assert appeal.group_id is None


async def test_a_suspended_persona_appeals_with_its_notices_token_and_is_reinstated(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (bob, bob_id) = p["ada"], p["bob"]
    one, _ = await staff(suite, "one")
    two, _ = await staff(suite, "two")
    email = (await suite.client.get("/api/v1/me", headers=auth(bob))).json()["email"]
    report = await filed(suite, ada, "persona", bob_id)
    assert (await resolve(suite, one, report["id"], "suspend_persona")).status_code == 200
    await suite.deliver()
    form = {"grant_type": "password", "username": email, "password": "correct horse battery staple"}
    token = (await suite.client.post("/api/v1/auth/token", data={**form, "scope": "notices"})).json()[
        "access_token"
    ]
    notice = await _notice(suite, token)
    appealed = await _appeal(suite, token, notice["id"])
    assert appealed.status_code == 201, appealed.text
    assert (await resolve(suite, two, appealed.json()["appeal"]["id"], "revert")).status_code == 200
    ((_, subject, data),) = await published(suite, "moderation.persona.reinstated")
    assert subject == bob_id == data["subject_id"]
    await suite.deliver()
    again = await suite.client.post("/api/v1/auth/token", data=form)
    assert again.status_code == 200, again.text
    assert (
        await suite.client.get("/api/v1/reports", headers=auth(again.json()["access_token"]))
    ).status_code == 200


async def test_a_lifted_or_twice_appealed_action_is_undone_once(suite):
    p = await people(suite, "ada", "bob", "cyd")
    (ada, _), (bob, bob_id), (cyd, cyd_id) = p["ada"], p["bob"], p["cyd"]
    one, _ = await staff(suite, "one")
    two, _ = await staff(suite, "two")
    # a group with two owners: hiding it gives each a notice, and each appeals
    made = await group(suite, bob)
    await suite.client.put(f"{GROUPS}/{made['id']}/members/{cyd_id}", headers=auth(cyd))
    promoted = await suite.client.patch(
        f"{GROUPS}/{made['id']}/members/{cyd_id}", json={"role": "owner"}, headers=auth(bob)
    )
    assert promoted.status_code == 200, promoted.text
    await suite.deliver()
    report = await filed(suite, ada, "group", made["id"])
    assert (await resolve(suite, one, report["id"], "hide")).status_code == 200
    assert {str(n.persona_id) for n in await rows(suite, Notice)} == {bob_id, cyd_id}
    appeals = [
        (await _appeal(suite, t, (await _notice(suite, t))["id"])).json()["appeal"] for t in (bob, cyd)
    ]
    for appeal in appeals:
        assert (await resolve(suite, two, appeal["id"], "revert")).status_code == 200
    assert len(await published(suite, "moderation.group.restored")) == 1

    # a limit lifted at its end has nothing left for a revert to undo
    limited = await filed(suite, ada, "persona", bob_id)
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    done = await resolve(suite, one, limited["id"], "limit", until=until)
    action_id = uuid.UUID(done.json()["actions"][0]["id"])
    async with suite.moderation.state.database.sessionmaker() as session:
        action = await session.get(Action, action_id)
        assert action is not None
        await actions.lift(session, suite.moderation.state.outbox, action)
        await actions.lift(session, suite.moderation.state.outbox, action)
        await session.commit()
    assert len(await published(suite, "moderation.persona.unlimited")) == 1
    notices = (await suite.client.get(NOTICES, headers=auth(bob))).json()["items"]
    limit_notice = next(n for n in notices if n["action"] == "limit")
    appeal = (await _appeal(suite, bob, limit_notice["id"])).json()["appeal"]
    assert (await resolve(suite, two, appeal["id"], "revert")).status_code == 200
    assert len(await published(suite, "moderation.persona.unlimited")) == 1
