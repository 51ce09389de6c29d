"""Resolving reports: each action on each kind of target, by staff and by a group's role, with
its events, its notices and identity's audit entry; the refusals (nothing written); and the
effects the owners apply from the events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.moderation.models import Action, Notice, Report
from tests.helpers import auth
from tests.moderation.support import (
    NOTICES,
    QUEUE,
    comment,
    file,
    filed,
    group,
    people,
    post,
    problem,
    published,
    resolve,
    rows,
    staff,
)

GROUPS = "/api/v1/groups"
COMMON = {"context", "report_id", "action_id", "target_type", "target_id", "subject_id", "until"}


def later(days: int = 3) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def _target(suite: Any, kind: str, p: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A target of ``kind`` by bob (the author, or the group's owner)."""
    bob, bob_id = p["bob"]
    if kind == "persona":
        return {"id": bob_id, "subject": bob_id}
    if kind == "group":
        made = await group(suite, bob)
        return {"id": made["id"], "subject": None, "owner": bob_id}
    written = await post(suite, bob, "A post that breaks the rules")
    if kind == "post":
        return {"id": written["id"], "subject": bob_id}
    made = await comment(suite, bob, written["id"], "A comment that breaks them too")
    return {"id": made["id"], "subject": bob_id, "post_id": written["id"]}


async def _audit(suite: Any, admin: str, action_id: str) -> dict[str, Any] | None:
    """Identity's audit entry of a moderation action, if any."""
    resp = await suite.client.get("/api/v1/admin/audit", params={"limit": 100}, headers=auth(admin))
    assert resp.status_code == 200, resp.text
    for entry in resp.json()["items"]:
        if entry["details"].get("action_id") == action_id:
            found: dict[str, Any] = entry
            return found
    return None


STAFF_CASES = [
    ("post", "hide", ["moderation.content.hidden"]),
    ("post", "remove", ["moderation.content.removed"]),
    ("post", "lock", ["moderation.post.locked"]),
    ("post", "warn", ["moderation.persona.warned"]),
    ("post", "limit", ["moderation.persona.limited"]),
    ("post", "suspend_persona", ["moderation.persona.suspended"]),
    ("post", "none", []),
    ("comment", "hide", ["moderation.content.hidden"]),
    ("comment", "remove", ["moderation.content.removed"]),
    ("comment", "warn", ["moderation.persona.warned"]),
    ("persona", "warn", ["moderation.persona.warned"]),
    ("persona", "limit", ["moderation.persona.limited"]),
    ("persona", "suspend_persona", ["moderation.persona.suspended"]),
    ("persona", "none", []),
    ("group", "hide", ["moderation.group.hidden"]),
    ("group", "remove", ["moderation.group.removed"]),
    ("group", "warn", ["moderation.persona.warned"]),
]


@pytest.mark.parametrize(("target_type", "kind", "events"), STAFF_CASES)
async def test_staff_resolve_with_each_action_on_each_target(suite, target_type, kind, events):
    p = await people(suite, "ada", "bob")
    ada, ada_id = p["ada"]
    bob, bob_id = p["bob"]
    mod, mod_id = await staff(suite, "mo")
    root, _ = await staff(suite, "root", "admin")
    target = await _target(suite, target_type, p)
    report = await filed(suite, ada, target_type, target["id"], category="harassment")
    fields = {"until": later()} if kind == "limit" else {}
    resp = await resolve(suite, mod, report["id"], kind, **fields)
    assert resp.status_code == 200, resp.text
    review = resp.json()
    assert review["status"] == "resolved" and review["action"] == kind
    (action,) = review["actions"]
    assert action["kind"] == kind and action["as_role"] == "staff" and action["moderator_id"] == mod_id

    moderation_events = [e for e in await published(suite) if e[0].startswith("moderation.")]
    acted = [
        e
        for e in moderation_events
        if e[0] not in ("moderation.report.created", "moderation.report.resolved")
    ]
    assert [t for t, _, _ in acted] == events
    for event_type, subject, data in acted:
        assert set(data) >= COMMON and data["action_id"] == action["id"] and data["report_id"] == report["id"]
        assert data["context"] == "professional"
        if event_type.startswith("moderation.persona."):
            assert subject == data["target_id"] == data["subject_id"] == bob_id
            assert data["target_type"] == "persona"
        else:
            assert subject == data["target_id"] == target["id"] and data["target_type"] == target_type
        if target_type == "comment" and event_type.startswith("moderation.content."):
            assert data["post_id"] == target["post_id"]
        if kind == "limit":
            assert data["until"] is not None
    for _, _, data in moderation_events:  # never the reporter, the moderator or text
        text = str(data)
        assert ada_id not in text and mod_id not in text and "reason" not in data
    ((_, _, resolved),) = await published(suite, "moderation.report.resolved")
    assert resolved["action"] == kind and resolved["action_id"] == action["id"]
    ((_, subject, audit),) = await published(suite, "internal.moderation.audit")
    assert subject == action["id"] and audit["moderator_id"] == mod_id and audit["group_id"] is None
    assert audit["kind"] == kind and audit["reason"] == "Against the rules of this place."

    notices = await rows(suite, Notice)
    if kind == "none":
        assert notices == []
    else:
        (notice,) = notices
        assert str(notice.persona_id) == bob_id
        seen = await suite.client.get(NOTICES, headers=auth(bob))
        (shown,) = seen.json()["items"]
        assert shown["action"] == kind and shown["category"] == "harassment"
        assert shown["target"] == {"type": target_type, "id": target["id"]}
        assert (shown["until"] is not None) == (kind == "limit") and shown["appeal"] is None
        assert ada_id not in seen.text and mod_id not in seen.text
        assert (await suite.client.get(NOTICES, headers=auth(ada))).json()["items"] == []

    await suite.deliver()
    entry = await _audit(suite, root, action["id"])
    assert entry is not None, "identity wrote no audit entry"
    assert (
        entry["actor"] == mod_id and entry["action"] == f"moderation.{kind}" and entry["account_id"] is None
    )


GROUP_CASES = [
    ("hide", ["moderation.content.hidden"], 200),
    ("remove", ["moderation.content.removed"], 200),
    ("lock", ["moderation.post.locked"], 200),
    ("none", [], 200),
    ("warn", [], 403),
    ("limit", [], 403),
    ("suspend_persona", [], 403),
]


@pytest.mark.parametrize(("kind", "events", "status"), GROUP_CASES)
async def test_a_group_moderator_acts_on_its_group_content_only(suite, kind, events, status):
    p = await people(suite, "ada", "bob", "cyd")
    (ada, _), (bob, _), (cyd, cyd_id) = p["ada"], p["bob"], p["cyd"]
    root, _ = await staff(suite, "root", "admin")
    made = await group(suite, bob)
    for token, persona_id in (p["cyd"], p["ada"]):
        await suite.client.put(f"{GROUPS}/{made['id']}/members/{persona_id}", headers=auth(token))
    promoted = await suite.client.patch(
        f"{GROUPS}/{made['id']}/members/{cyd_id}", json={"role": "moderator"}, headers=auth(bob)
    )
    assert promoted.status_code == 200, promoted.text
    inside = await post(suite, bob, "A post inside the group", audience="group", group_id=made["id"])
    report = await filed(suite, ada, "post", inside["id"])
    fields = {"until": later()} if kind == "limit" else {}
    resp = await resolve(suite, cyd, report["id"], kind, **fields)
    if status == 403:
        problem(resp, 403, "action-not-allowed")
        assert not await rows(suite, Action)
        assert (await rows(suite, Report))[0].status == "open"
        assert [t for t, _, _ in await published(suite)] == ["moderation.report.created"]
        return
    assert resp.status_code == 200, resp.text
    (action,) = resp.json()["actions"]
    assert action["as_role"] == "group" and action["group_id"] == made["id"]
    acted = [
        t
        for t, _, _ in await published(suite)
        if t.startswith("moderation.content") or t.startswith("moderation.post")
    ]
    assert acted == events
    ((_, _, audit),) = await published(suite, "internal.moderation.audit")
    assert audit["moderator_id"] is None and audit["group_id"] == made["id"]
    await suite.deliver()
    entry = await _audit(suite, root, action["id"])
    assert entry is not None and entry["actor"] == f"group:{made['id']}"
    assert cyd_id not in str(entry)


async def test_each_wrong_resolution_is_refused_and_writes_nothing(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (bob, bob_id) = p["ada"], p["bob"]
    mod, _ = await staff(suite, "mo")
    made = await group(suite, bob)
    written = await post(suite, bob, "A post to report")
    reply = await comment(suite, bob, written["id"])
    on = {
        "persona": await filed(suite, ada, "persona", bob_id),
        "group": await filed(suite, ada, "group", made["id"]),
        "post": await filed(suite, ada, "post", written["id"]),
        "comment": await filed(suite, ada, "comment", reply["id"]),
    }
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("persona", {"action": "hide"}, 422, "action-not-applicable"),
        ("persona", {"action": "lock"}, 422, "action-not-applicable"),
        ("group", {"action": "lock"}, 422, "action-not-applicable"),
        ("group", {"action": "limit", "until": later()}, 422, "action-not-applicable"),
        ("comment", {"action": "lock"}, 422, "action-not-applicable"),
        ("post", {"action": "release"}, 422, "action-not-applicable"),
        ("post", {"action": "revert"}, 422, "action-not-applicable"),
        ("post", {"action": "limit"}, 422, "duration-required"),
        ("post", {"action": "limit", "until": past}, 422, "validation"),
        ("post", {"action": "hide", "until": later()}, 422, "validation"),
        ("post", {"action": "hide", "reason": ""}, 422, "validation"),
        ("post", {"action": "hide", "reason": "   "}, 422, "validation"),
        ("post", {"action": "hide", "reason": "x" * 2001}, 422, "validation"),
        ("post", {"action": "erase"}, 422, "validation"),
        ("post", {"action": "hide", "rules": [7]}, 422, "unknown-rule"),
        ("post", {"action": "hide", "until": "tomorrow"}, 422, "validation"),
        ("post", {"action": "limit", "until": "2001-01-01T00:00:00"}, 422, "validation"),
        ("post", {"action": "limit", "until": 4102444800}, 422, "validation"),
        ("post", {"action": "hide", "version": 2**40}, 422, "validation"),
    ]
    for target_type, body, status, slug in cases:
        payload = {"reason": "Against the rules of this place.", **body}
        resp = await suite.client.post(
            f"{QUEUE}/{on[target_type]['id']}/resolve", json=payload, headers=auth(mod)
        )
        problem(resp, status, slug)
    no_reason = await suite.client.post(
        f"{QUEUE}/{on['post']['id']}/resolve", json={"action": "hide"}, headers=auth(mod)
    )
    problem(no_reason, 422, "validation")
    assert not await rows(suite, Action)
    assert {r.status for r in await rows(suite, Report)} == {"open"}
    assert {t for t, _, _ in await published(suite)} == {"moderation.report.created"}


async def test_the_owners_apply_the_actions_from_the_events(suite):
    p = await people(suite, "ada", "bob", "cyd")
    (ada, _), (bob, _), (cyd, _) = p["ada"], p["bob"], p["cyd"]
    mod, _ = await staff(suite, "mo")
    written = await post(suite, bob, "A post that goes away")
    report = await filed(suite, ada, "post", written["id"])
    assert (await resolve(suite, mod, report["id"], "hide")).status_code == 200
    await suite.deliver()
    problem(await suite.client.get(f"/api/v1/posts/{written['id']}", headers=auth(cyd)), 404)
    own = await suite.client.get(f"/api/v1/posts/{written['id']}", headers=auth(bob))
    assert own.status_code == 200 and own.json()["moderation"] == "hidden"

    made = await group(suite, bob)
    about = await filed(suite, ada, "group", made["id"])
    assert (await resolve(suite, mod, about["id"], "remove")).status_code == 200
    await suite.deliver()
    problem(await suite.client.get(f"{GROUPS}/{made['id']}", headers=auth(cyd)), 404)


async def test_a_suspended_persona_reads_its_notices_with_a_notices_token_only(suite):
    p = await people(suite, "ada", "bob")
    (ada, _), (bob, bob_id) = p["ada"], p["bob"]
    mod, _ = await staff(suite, "mo")
    email = await _email_of(suite, bob)
    mine = await filed(suite, bob, "persona", p["ada"][1])
    report = await filed(suite, ada, "persona", bob_id)
    assert (await resolve(suite, mod, report["id"], "suspend_persona")).status_code == 200
    await suite.deliver()
    # the reporter it was loses its reports, and everything else here
    problem(await suite.client.get("/api/v1/reports", headers=auth(bob)), 401)
    problem(await suite.client.get(f"/api/v1/reports/{mine['id']}", headers=auth(bob)), 401)
    problem(await suite.client.get(NOTICES, headers=auth(bob)), 401)
    refused = await suite.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": "correct horse battery staple"},
    )
    assert refused.status_code in (400, 401, 403), refused.text
    notices = await suite.client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": email,
            "password": "correct horse battery staple",
            "scope": "notices",
        },
    )
    assert notices.status_code == 200, notices.text
    token = notices.json()["access_token"]
    seen = await suite.client.get(NOTICES, headers=auth(token))
    assert seen.status_code == 200 and [n["action"] for n in seen.json()["items"]] == ["suspend_persona"]
    problem(await file(suite, token, "persona", p["ada"][1]), 403, "notices-only")
    problem(await suite.client.get("/api/v1/reports", headers=auth(token)), 403, "notices-only")
    problem(await suite.client.get(QUEUE, headers=auth(token)), 403)


async def _email_of(suite: Any, token: str) -> str:
    resp = await suite.client.get("/api/v1/me", headers=auth(token))
    assert resp.status_code == 200, resp.text
    email: str = resp.json()["email"]
    return email
