"""Records' disposal of group health history (decision 0033): ``internal.records.dispose`` with
the class ``group_health`` deletes the activity history from before its cut-off, each group's
latest item apart, in batches; every other shape is ignored; a redelivery deletes nothing more."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from services.groups import records
from services.groups.models import Activity, outbox_tables
from tests.groups.support import GROUPS, Feed, people, send
from tests.helpers import auth, create_group

D = timedelta(days=1)


def disposal(data: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """``internal.records.dispose`` as records' relay sends it (subject: the run's id)."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": "internal.records.dispose",
        "source": "records",
        "subject": str(uuid.uuid4()),
        "time": datetime.now(UTC).isoformat(),
        "data": data,
    }


async def history(suite: Any) -> set[str]:
    """The ``ref`` of every activity row groups keeps."""
    async with suite.groups.state.database.sessionmaker() as session:
        return set((await session.scalars(select(col(Activity.ref)))).all())


async def dead_letters(suite: Any) -> list[str]:
    table = outbox_tables.dead_letter
    async with suite.groups.state.database.sessionmaker() as session:
        return list((await session.scalars(select(table.c.type))).all())


def ref(event: dict[str, Any]) -> str:
    data = event["data"]
    if event["type"] == "reaction.added":
        return f"{data['post_id']}:{data['persona_id']}:{data['kind']}"
    return str(data["id"])


async def two_groups(suite: Any, now: datetime) -> dict[str, Any]:
    """``busy`` has history from 100, 50 and 10 days ago; ``quiet`` a single post from 200
    days ago, its latest item."""
    p = await people(suite, "ada", "bob")
    ada, ada_id = p["ada"]
    bob_id = p["bob"][1]
    busy = await create_group(suite.client, ada, "busy")
    quiet = await create_group(suite.client, ada, "quiet")
    feed = Feed(busy["id"])
    old = feed.post(ada_id, now - 100 * D)
    old_comment = feed.comment(old, bob_id, now - 50 * D)
    old_reaction = feed.reaction(old, bob_id, now - 50 * D)
    recent = feed.post(bob_id, now - 10 * D)
    lonely = Feed(quiet["id"]).post(ada_id, now - 200 * D)
    await send(suite, old, old_comment, old_reaction, recent, lonely)
    events = {"old": old, "old_comment": old_comment, "old_reaction": old_reaction}
    refs = {name: ref(e) for name, e in {**events, "recent": recent, "lonely": lonely}.items()}
    assert await history(suite) == set(refs.values())
    return {"busy": busy, "quiet": quiet, "refs": refs, "ada": ada}


async def test_old_history_goes_and_each_groups_latest_item_stays(suite):
    now = datetime.now(UTC)
    world = await two_groups(suite, now)
    refs = world["refs"]
    resp = await send(suite, disposal({"class": "group_health", "before": (now - 30 * D).isoformat()}))
    assert resp.json() == {"received": 1, "applied": 1}
    assert await history(suite) == {refs["recent"], refs["lonely"]}

    # the quiet group's only item, however old, still dates its last activity
    resp = await suite.client.get(f"{GROUPS}/{world['quiet']['id']}/health", headers=auth(world["ada"]))
    assert resp.status_code == 200, resp.text
    last = datetime.fromisoformat(resp.json()["last_activity_at"])
    assert abs(last - (now - 200 * D)) < timedelta(seconds=1)
    assert await dead_letters(suite) == []


async def test_a_redelivery_or_a_second_run_deletes_nothing_more(suite):
    now = datetime.now(UTC)
    world = await two_groups(suite, now)
    refs = world["refs"]
    event_id = str(uuid.uuid4())
    cut_off = {"class": "group_health", "before": (now - 60 * D).isoformat()}
    await send(suite, disposal(cut_off, event_id=event_id))
    kept = {refs["old_comment"], refs["old_reaction"], refs["recent"], refs["lonely"]}
    assert await history(suite) == kept

    again = await send(suite, disposal(cut_off, event_id=event_id))
    assert again.json() == {"received": 1, "applied": 0}  # the same event, recognised
    await send(suite, disposal(cut_off))  # the next run, with the same cut-off
    assert await history(suite) == kept


async def test_the_cut_off_is_an_instant_whatever_its_offset(suite):
    p = await people(suite, "ada")
    ada, ada_id = p["ada"]
    group = await create_group(suite.client, ada, "edges")
    cut_off = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    feed = Feed(group["id"])
    before = feed.post(ada_id, cut_off - timedelta(seconds=1))
    at = feed.post(ada_id, cut_off)
    after = feed.post(ada_id, cut_off + timedelta(seconds=1))
    await send(suite, before, at, after)
    # 14:00 at +02:00 is 12:00 UTC: only what came strictly before it goes
    await send(suite, disposal({"class": "group_health", "before": "2026-06-01T14:00:00+02:00"}))
    assert await history(suite) == {ref(at), ref(after)}


async def test_every_other_class_or_kind_is_ignored(suite):
    now = datetime.now(UTC)
    world = await two_groups(suite, now)
    everything = set(world["refs"].values())
    later = (now + D).isoformat()
    others: list[dict[str, Any]] = [
        {"class": "notifications", "before": later},
        {"class": "webhook_deliveries", "before": later},
        {"class": "audit_log", "before": later},
        {"class": "something_new", "before": later},
        {"kind": "post", "ids": [str(uuid.uuid4())]},
        {"kind": "comment", "ids": [str(uuid.uuid4())]},
        {
            "kind": "reaction",
            "reactions": [{"post_id": str(uuid.uuid4()), "persona_id": str(uuid.uuid4()), "kind": "like"}],
        },
        {"kind": "revisions", "post_ids": [str(uuid.uuid4())], "before": later},
    ]
    resp = await send(suite, *(disposal(data) for data in others))
    assert resp.json() == {"received": len(others), "applied": len(others)}
    assert await history(suite) == everything
    assert await dead_letters(suite) == []


async def test_a_group_health_disposal_without_its_cut_off_is_dead_lettered(suite):
    now = datetime.now(UTC)
    world = await two_groups(suite, now)
    for data in ({"class": "group_health"}, {"class": "group_health", "before": "last spring"}):
        resp = await send(suite, disposal(data))
        assert resp.json() == {"received": 1, "applied": 0}
    assert await history(suite) == set(world["refs"].values())
    assert await dead_letters(suite) == ["internal.records.dispose"] * 2


async def test_a_long_history_goes_in_batches(suite):
    p = await people(suite, "ada")
    ada, ada_id = p["ada"]
    group = await create_group(suite.client, ada, "long")
    now = datetime.now(UTC)
    feed = Feed(group["id"])
    posts = [feed.post(ada_id, now - (40 + i) * D) for i in range(7)]
    latest = feed.post(ada_id, now - 35 * D)
    await send(suite, *posts, latest)
    database = suite.groups.state.database
    async with database.sessionmaker() as session, session.begin():
        removed = await records.dispose_of_history(session, now - 30 * D, batch=3)
    assert removed == 7
    assert await history(suite) == {ref(latest)}
    async with database.sessionmaker() as session, session.begin():
        assert await records.dispose_of_history(session, now - 30 * D, batch=3) == 0
        assert await session.scalar(select(func.count()).select_from(Activity)) == 1
