"""What groups tells records (decision 0033): every change of a group publishes
``internal.records.group`` with the group's whole recorded state, in the change's own
transaction, to records alone; a refused change publishes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.groups.models import outbox_tables
from tests.groups.support import GROUPS, join, people, problem, published
from tests.helpers import admin, auth, create_group, with_personal

RECORD = "internal.records.group"
FIELDS = {"id", "context", "handle", "name", "purpose", "visibility", "created_at", "change", "at", "deleted"}


async def records_of(suite: Any, group_id: str) -> list[dict[str, Any]]:
    """The data of every record groups published about the group, in order."""
    found = [data for _, subject, data in await published(suite, RECORD) if subject == group_id]
    for data in found:
        assert set(data) == FIELDS, data
        assert data["id"] == group_id
        for stamp in (data["created_at"], data["at"]):
            assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp
    return found


def moderation_event(action: str, group_id: str, at: datetime) -> dict[str, Any]:
    """A ``moderation.group.<action>`` event as moderation's relay sends it."""
    return {
        "id": str(uuid.uuid4()),
        "type": f"moderation.group.{action}",
        "source": "moderation",
        "subject": group_id,
        "time": at.isoformat(),
        "data": {
            "context": "professional",
            "report_id": str(uuid.uuid4()),
            "action_id": str(uuid.uuid4()),
            "target_type": "group",
            "target_id": group_id,
        },
    }


async def moderate(suite: Any, event: dict[str, Any]) -> None:
    token = suite.groups.state.settings.internal_token.get_secret_value()
    resp = await suite.client.post(
        "http://groups/internal/events", json={"events": [event]}, headers=auth(token)
    )
    assert resp.status_code == 200 and resp.json()["applied"] == 1, resp.text


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


async def test_a_created_group_is_recorded_with_its_purpose_for_records_alone(suite):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    group = await create_group(
        suite.client, ada, "cloud_move", purpose="Move the last services to the cloud.", visibility="closed"
    )
    [record] = await records_of(suite, group["id"])
    assert record == {
        "id": group["id"],
        "context": "professional",
        "handle": "cloud_move",
        "name": "Cloud_Move",
        "purpose": "Move the last services to the cloud.",
        "visibility": "closed",
        "created_at": record["created_at"],
        "change": "created",
        "at": record["at"],
        "deleted": False,
    }
    assert _instant(record["created_at"]) == _instant(group["created_at"])
    assert _instant(record["at"]) == _instant(group["updated_at"])

    event, delivery = outbox_tables.event, outbox_tables.delivery
    async with suite.groups.state.database.sessionmaker() as session:
        subscribers = (
            await session.scalars(
                select(delivery.c.subscriber)
                .join(event, event.c.seq == delivery.c.event_seq)
                .where(event.c.type == RECORD)
            )
        ).all()
    assert subscribers == ["records"]


async def test_each_change_of_name_purpose_visibility_or_charter_is_recorded(suite):
    p = await people(suite, "ada", "bob")
    ada, bob_id = p["ada"][0], p["bob"][1]
    group = await create_group(suite.client, ada, "cloud")
    gid = group["id"]
    changes: list[dict[str, Any]] = [
        {"name": "Cloud move"},
        {"purpose": "Move every service to the cloud by June."},
        {"visibility": "secret"},
        {"charter": {"objective": "Nothing left on premises.", "stewards": [bob_id]}},
        {"tags": ["infra"], "description": "Where we plan it."},
    ]
    answers = []
    for change in changes:
        resp = await suite.client.patch(f"{GROUPS}/{gid}", json=change, headers=auth(ada))
        assert resp.status_code == 200, resp.text
        answers.append(resp.json())

    records = await records_of(suite, gid)
    assert [r["change"] for r in records] == ["created"] + ["updated"] * len(changes)
    for record, answer in zip(records[1:], answers, strict=True):
        assert (record["name"], record["purpose"], record["visibility"]) == (
            answer["name"],
            answer["purpose"],
            answer["visibility"],
        )
        assert _instant(record["at"]) == _instant(answer["updated_at"])
        assert record["deleted"] is False and record["handle"] == "cloud"
    assert [(r["name"], r["purpose"], r["visibility"]) for r in records[1:4]] == [
        ("Cloud move", "Work together on a shared purpose.", "open"),
        ("Cloud move", "Move every service to the cloud by June.", "open"),
        ("Cloud move", "Move every service to the cloud by June.", "secret"),
    ]
    assert len({r["created_at"] for r in records}) == 1


async def test_a_refused_change_records_nothing(suite):
    p = await people(suite, "ada", "bob")
    ada, bob = p["ada"][0], p["bob"][0]
    group = await create_group(suite.client, ada, "cloud")
    gid = group["id"]
    await join(suite, gid, *p["bob"])
    before = await records_of(suite, gid)
    problem(await suite.client.patch(f"{GROUPS}/{gid}", json={"name": "Mine"}, headers=auth(bob)), 403)
    problem(await suite.client.delete(f"{GROUPS}/{gid}", headers=auth(bob)), 403)
    stale = await suite.client.patch(
        f"{GROUPS}/{gid}", json={"name": "Stale"}, headers={**auth(ada), "If-Match": '"00000000-1"'}
    )
    problem(stale, 412)
    problem(await suite.client.patch(f"{GROUPS}/{gid}", json={"purpose": None}, headers=auth(ada)), 422)
    problem(
        await suite.client.patch(
            f"{GROUPS}/{gid}", json={"charter": {"stewards": [str(uuid.uuid4())]}}, headers=auth(ada)
        ),
        404,
    )
    assert await records_of(suite, gid) == before


async def test_archive_and_restore_are_recorded_once_each(suite):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    group = await create_group(suite.client, ada, "cloud")
    gid = group["id"]
    for _ in range(2):  # archiving again changes nothing
        assert (await suite.client.delete(f"{GROUPS}/{gid}", headers=auth(ada))).status_code == 204
    archived = (await suite.client.get(f"{GROUPS}/{gid}", headers=auth(ada))).json()
    for _ in range(2):
        resp = await suite.client.post(f"{GROUPS}/{gid}/restore", headers=auth(ada))
        assert resp.status_code == 200, resp.text
    restored = resp.json()

    records = await records_of(suite, gid)
    assert [(r["change"], r["deleted"]) for r in records] == [
        ("created", False),
        ("archived", False),
        ("restored", False),
    ]
    assert _instant(records[1]["at"]) == _instant(archived["archived_at"])
    assert _instant(records[2]["at"]) == _instant(restored["updated_at"])


async def test_a_deletion_records_the_groups_last_state(suite):
    root, _ = await admin(suite)
    p = await people(suite, "ada")
    ada = p["ada"][0]
    group = await create_group(suite.client, ada, "cloud", purpose="Plan the move.")
    gid = group["id"]
    resp = await suite.client.patch(f"{GROUPS}/{gid}", json={"name": "Last name"}, headers=auth(ada))
    assert resp.status_code == 200, resp.text
    start = datetime.now(UTC)
    resp = await suite.client.delete(f"{GROUPS}/{gid}", params={"hard": "true"}, headers=auth(root))
    assert resp.status_code == 204, resp.text

    records = await records_of(suite, gid)
    assert [r["change"] for r in records] == ["created", "updated", "deleted"]
    deleted = records[-1]
    assert deleted["deleted"] is True
    assert (deleted["name"], deleted["purpose"], deleted["handle"]) == (
        "Last name",
        "Plan the move.",
        "cloud",
    )
    assert _instant(deleted["at"]) >= start
    # the record is told with the deletion itself: the public event carries the same instant
    [(_, _, public)] = await published(suite, "group.deleted")
    assert _instant(public["updated_at"]) == _instant(deleted["at"])


async def test_each_moderation_change_is_recorded_and_a_stale_one_is_not(suite):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    group = await create_group(suite.client, ada, "cloud")
    gid = group["id"]
    start = datetime.now(UTC)
    await moderate(suite, moderation_event("hidden", gid, start + timedelta(seconds=1)))
    await moderate(suite, moderation_event("restored", gid, start + timedelta(seconds=3)))
    # decided before the restoration: overtaken, changes nothing
    await moderate(suite, moderation_event("removed", gid, start + timedelta(seconds=2)))
    # the same state again changes nothing either
    await moderate(suite, moderation_event("restored", gid, start + timedelta(seconds=4)))

    records = await records_of(suite, gid)
    assert [r["change"] for r in records] == ["created", "moderated", "moderated"]
    assert all(r["deleted"] is False and r["purpose"] == group["purpose"] for r in records)
    updates = await published(suite, "group.updated")
    assert [_instant(r["at"]) for r in records[1:]] == [_instant(d["updated_at"]) for _, _, d in updates]


async def test_a_group_left_empty_by_an_erasure_is_recorded_as_archived(suite):
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    group = await create_group(suite.client, ada["personal"], "knitting")
    gid = group["id"]
    resp = await suite.client.delete("/api/v1/me/personas/personal", headers=auth(ada["pro"]))
    assert resp.status_code == 204, resp.text
    await suite.deliver()

    records = await records_of(suite, gid)
    assert [(r["change"], r["context"]) for r in records] == [
        ("created", "personal"),
        ("archived", "personal"),
    ]
    [(_, _, archived)] = [e for e in await published(suite, "group.archived") if e[1] == gid]
    assert _instant(records[1]["at"]) == _instant(archived["updated_at"])
