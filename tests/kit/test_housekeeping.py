"""Retention (kit.housekeeping): each service deletes what it no longer keeps, and nothing it
still needs: undelivered events, recent answers, each group's latest activity."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from kit.housekeeping import Housekeeper
from services.feed.models import IdempotencyKey
from services.feed.models import outbox_tables as feed_outbox
from services.groups.models import Activity
from services.identity.models import WebhookDelivery, WebhookEndpoint
from tests.feed.support import people
from tests.groups.support import Feed, send
from tests.helpers import auth, create_group

D = timedelta(days=1)


async def _count(app, statement) -> int:
    async with app.state.database.sessionmaker() as session:
        return int(await session.scalar(statement) or 0)


async def _age(app, table, column: str, by: timedelta, *where) -> None:
    async with app.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(table).where(*where).values({column: datetime.now(UTC) - by}))


async def _sweep(app, batch: int = 2) -> dict[str, int]:
    """The app's own rules, in batches of two so that the batching loop runs too."""
    keeper: Housekeeper = app.state.housekeeper
    return await Housekeeper(app.state.database, keeper.rules, batch=batch).sweep()


async def test_delivered_events_go_after_a_week_undelivered_ones_stay(suite):
    ((ada, _),) = await people(suite, "ada")
    events, deliveries = feed_outbox.event, feed_outbox.delivery
    for i in range(3):
        assert (
            await suite.client.post("/api/v1/posts", json={"body": f"p{i}"}, headers=auth(ada))
        ).status_code == 201
    await suite.deliver()
    await suite.client.post("/api/v1/posts", json={"body": "not delivered yet"}, headers=auth(ada))
    total = await _count(suite.feed, select(func.count()).select_from(events))
    assert total >= 4
    await _age(suite.feed, events, "occurred_at", 8 * D)
    removed = await _sweep(suite.feed)
    pending = select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
    assert await _count(suite.feed, pending) >= 1
    left = await _count(suite.feed, select(func.count()).select_from(events))
    assert removed["outbox events"] == total - left and left >= 1
    assert await _count(suite.feed, select(func.count()).select_from(deliveries)) == await _count(
        suite.feed, pending
    )
    await suite.deliver()
    await _sweep(suite.feed)
    assert await _count(suite.feed, select(func.count()).select_from(events)) == 0


async def test_processed_event_ids_go_after_thirty_days(suite):
    await people(suite, "ada", "bob")  # the feed applies identity's persona events
    processed = feed_outbox.processed
    total = await _count(suite.feed, select(func.count()).select_from(processed))
    assert total >= 2
    oldest = await _count(suite.feed, select(func.count()).select_from(processed))
    some = (await _ids(suite.feed, processed))[: total // 2]
    await _age(suite.feed, processed, "processed_at", 31 * D, processed.c.id.in_(some))
    removed = await _sweep(suite.feed)
    assert removed["processed event ids"] == len(some)
    assert await _count(suite.feed, select(func.count()).select_from(processed)) == oldest - len(some)


async def _ids(app, table) -> list[uuid.UUID]:
    async with app.state.database.sessionmaker() as session:
        return list((await session.scalars(select(table.c.id))).all())


async def test_idempotency_answers_are_replayed_for_a_day_then_forgotten(suite):
    ((ada, _),) = await people(suite, "ada")
    headers = {**auth(ada), "Idempotency-Key": "weekly-1"}
    body = {"body": "weekly update"}
    first = await suite.client.post("/api/v1/posts", json=body, headers=headers)
    assert (await _sweep(suite.feed))["idempotency keys"] == 0
    again = await suite.client.post("/api/v1/posts", json=body, headers=headers)
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == first.json()["id"]
    await _age(suite.feed, IdempotencyKey.__table__, "created_at", 25 * timedelta(hours=1))
    assert (await _sweep(suite.feed))["idempotency keys"] == 1
    later = await suite.client.post("/api/v1/posts", json=body, headers=headers)
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]


async def test_group_history_keeps_ninety_days_and_each_groups_latest_item(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    busy = (await create_group(suite.client, ada, "busy"))["id"]
    quiet = (await create_group(suite.client, ada, "quiet"))["id"]
    now = datetime.now(UTC)
    busy_feed, quiet_feed = Feed(busy), Feed(quiet)
    await send(
        suite,
        busy_feed.post(ada_id, now - 120 * D),
        busy_feed.post(ada_id, now - 95 * D),
        busy_feed.post(ada_id, now - 10 * D),
        quiet_feed.post(ada_id, now - 200 * D),
        quiet_feed.post(ada_id, now - 150 * D),
    )
    removed = await _sweep(suite.groups)
    assert removed["group activity history"] == 3
    async with suite.groups.state.database.sessionmaker() as session:
        rows = (await session.execute(select(Activity.group_id, Activity.occurred_at))).all()
    left = sorted((str(g), round((now - at) / D)) for g, at in rows)
    assert left == sorted([(busy, 10), (quiet, 150)])
    health = await suite.client.get(f"/api/v1/groups/{quiet}/health", headers=auth(ada))
    assert health.json()["days_since_last_activity"] == 150


async def test_the_webhook_log_keeps_thirty_days_of_finished_deliveries(suite):
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        endpoint = WebhookEndpoint(
            owner="client:test", url="https://hooks.example/in", secret="whsec_" + "a" * 32, event_types=["*"]
        )
        session.add(endpoint)
        await session.flush()
        old = datetime.now(UTC) - 31 * D
        for status, created in (("delivered", old), ("failed", old), ("pending", old), ("delivered", None)):
            session.add(
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    event_id=uuid.uuid4(),
                    event_type="post.created",
                    subject="x",
                    payload="{}",
                    status=status,
                    **({"created_at": created} if created else {}),
                )
            )
    assert (await _sweep(suite.identity))["webhook delivery log"] == 2
    async with suite.identity.state.database.sessionmaker() as session:
        statuses = sorted((await session.scalars(select(WebhookDelivery.status))).all())
    assert statuses == ["delivered", "pending"]


async def test_the_worker_sweeps_on_its_interval_and_stops_when_asked(suite):
    ((ada, _),) = await people(suite, "ada")
    headers = {**auth(ada), "Idempotency-Key": "k-1"}
    assert (await suite.client.post("/api/v1/posts", json={"body": "x"}, headers=headers)).status_code == 201
    await _age(suite.feed, IdempotencyKey.__table__, "created_at", 2 * D)
    keeper = Housekeeper(suite.feed.state.database, suite.feed.state.housekeeper.rules, interval=0.05)
    task = asyncio.create_task(keeper.run())
    keys = select(func.count()).select_from(IdempotencyKey)
    for _ in range(100):
        if await _count(suite.feed, keys) == 0:
            break
        await asyncio.sleep(0.02)
    keeper.stopping.set()
    await asyncio.wait_for(task, 5)
    assert await _count(suite.feed, keys) == 0


async def test_dead_lettered_events_go_with_the_processed_event_ids(suite):
    token = suite.feed.state.settings.internal_token.get_secret_value()
    malformed = {
        "id": str(uuid.uuid4()),
        "type": "membership.added",
        "source": "groups",
        "subject": str(uuid.uuid4()),
        "time": datetime.now(UTC).isoformat(),
        "data": {},
    }
    resp = await suite.client.post(
        "http://feed/internal/events", json={"events": [malformed]}, headers=auth(token)
    )
    assert resp.status_code == 200
    letters = feed_outbox.dead_letter
    assert await _count(suite.feed, select(func.count()).select_from(letters)) == 1
    assert (await _sweep(suite.feed))["dead-lettered events"] == 0
    await _age(suite.feed, letters, "received_at", 31 * D)
    assert (await _sweep(suite.feed))["dead-lettered events"] == 1
