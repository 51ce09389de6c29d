"""Moderation's replicas, kept from the owners' events: personas (and their erasure), staff
roles, groups and their moderating roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.moderation.models import (
    GroupReplica,
    GroupRoleReplica,
    Notice,
    PersonaReplica,
    Report,
    StaffReplica,
)
from tests.helpers import auth, with_personal
from tests.moderation.support import NOTICES, filed, group, people, resolve, rows, staff


async def _send(
    suite: Any, event_type: str, subject: str, data: dict[str, Any], *, at: datetime, source: str
) -> None:
    """Delivers one event to moderation the way its publisher's relay does."""
    event = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "source": source,
        "subject": subject,
        "time": at.isoformat(),
        "data": data,
    }
    token = suite.moderation.state.settings.internal_token.get_secret_value()
    resp = await suite.client.post(
        "http://moderation/internal/events", json={"events": [event]}, headers=auth(token)
    )
    assert resp.status_code == 200 and resp.json()["applied"] == 1, resp.text


async def test_an_erased_persona_leaves_its_reports_without_a_reporter_and_its_notices_gone(suite):
    ann = await with_personal(suite.client, "ann")
    ben = await with_personal(suite.client, "ben")
    await suite.deliver()
    mod, _ = await staff(suite, "mo")
    by_ann = await filed(suite, ann["personal"], "persona", ben["personal_id"])
    about_ann = await filed(suite, ben["personal"], "persona", ann["personal_id"])
    assert (await resolve(suite, mod, about_ann["id"], "warn")).status_code == 200
    assert len(await rows(suite, Notice)) == 1

    erased = await suite.client.delete("/api/v1/me/personas/personal", headers=auth(ann["pro"]))
    assert erased.status_code == 204, erased.text
    await suite.deliver()
    (report,) = await rows(suite, Report, id=uuid.UUID(by_ann["id"]))
    assert report.reporter_id is None and report.status == "open"
    assert not await rows(suite, Notice)
    (replica,) = await rows(suite, PersonaReplica, id=uuid.UUID(ann["personal_id"]))
    assert replica.status == "erased" and replica.handle == "" and replica.display_name == ""
    review = await suite.client.get(f"/api/v1/moderation/reports/{about_ann['id']}", headers=auth(mod))
    assert review.json()["target"]["author"] == {
        "id": ann["personal_id"],
        "handle": None,
        "display_name": None,
    }
    # a late update does not bring the name back
    await _send(
        suite,
        "persona.updated",
        ann["personal_id"],
        {
            "id": ann["personal_id"],
            "context": "personal",
            "handle": "ann_home",
            "display_name": "Ann",
            "status": "active",
        },
        at=datetime.now(UTC) - timedelta(minutes=5),
        source="identity",
    )
    (replica,) = await rows(suite, PersonaReplica, id=uuid.UUID(ann["personal_id"]))
    assert replica.status == "erased"
    problem = await suite.client.get(NOTICES, headers=auth(ann["personal"]))
    assert problem.status_code == 401


async def test_staff_roles_follow_the_latest_event_of_a_professional_persona(suite):
    p = await people(suite, "ada")
    ada_id = p["ada"][1]
    now = datetime.now(UTC)
    data = {"persona_id": ada_id, "context": "professional", "roles": ["moderator", "communications"]}
    await _send(suite, "internal.staff.updated", ada_id, data, at=now, source="identity")
    (row,) = await rows(suite, StaffReplica)
    assert row.roles == ["moderator"]
    stale = {**data, "roles": ["admin", "moderator"]}
    await _send(
        suite, "internal.staff.updated", ada_id, stale, at=now - timedelta(seconds=5), source="identity"
    )
    assert (await rows(suite, StaffReplica))[0].roles == ["moderator"]
    personal = {**data, "context": "personal", "roles": ["admin"]}
    await _send(
        suite, "internal.staff.updated", ada_id, personal, at=now + timedelta(seconds=1), source="identity"
    )
    assert (await rows(suite, StaffReplica))[0].roles == ["moderator"]
    await _send(
        suite,
        "internal.staff.updated",
        ada_id,
        {**data, "roles": []},
        at=now + timedelta(seconds=2),
        source="identity",
    )
    assert not await rows(suite, StaffReplica)


async def test_groups_and_their_moderating_roles_follow_groups_events(suite):
    p = await people(suite, "bob", "cyd")
    (bob, bob_id), (cyd, cyd_id) = p["bob"], p["cyd"]
    made = await group(suite, bob, visibility="closed")
    gid = uuid.UUID(made["id"])
    (replica,) = await rows(suite, GroupReplica)
    assert replica.id == gid and replica.visibility == "closed" and replica.context == "professional"
    assert [(str(r.persona_id), r.role) for r in await rows(suite, GroupRoleReplica)] == [(bob_id, "owner")]
    invited = await suite.client.post(
        f"/api/v1/groups/{made['id']}/invitations", json={"persona_id": cyd_id}, headers=auth(bob)
    )
    assert invited.status_code == 201, invited.text
    accepted = await suite.client.post(
        f"/api/v1/groups/{made['id']}/invitations/{cyd_id}/accept", headers=auth(cyd)
    )
    assert accepted.status_code in (200, 201), accepted.text
    await suite.deliver()
    # a plain member is not kept; a moderator is, until it is a member again
    assert {str(r.persona_id) for r in await rows(suite, GroupRoleReplica)} == {bob_id}
    for role, kept in (("moderator", {bob_id, cyd_id}), ("member", {bob_id})):
        changed = await suite.client.patch(
            f"/api/v1/groups/{made['id']}/members/{cyd_id}", json={"role": role}, headers=auth(bob)
        )
        assert changed.status_code == 200, changed.text
        await suite.deliver()
        assert {str(r.persona_id) for r in await rows(suite, GroupRoleReplica)} == kept
    root, _ = await staff(suite, "root", "admin")
    deleted = await suite.client.delete(
        f"/api/v1/groups/{made['id']}", params={"hard": "true"}, headers=auth(root)
    )
    assert deleted.status_code == 204, deleted.text
    await suite.deliver()
    assert not await rows(suite, GroupReplica) and not await rows(suite, GroupRoleReplica)
