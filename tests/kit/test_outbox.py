"""The transactional outbox: events commit with the change, reach every subscriber at least
once, in order, through subscriber outages and process restarts, and apply once."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import Uuid, bindparam, func, select, text, update
from sqlalchemy import event as sa_event

from kit.outbox import Then
from kit.timeutil import utcnow
from services.feed.models import PersonaReplica
from services.feed.models import outbox_tables as feed_outbox
from services.groups.models import PersonaReplica as GroupsPersonaReplica
from services.identity.models import outbox_tables
from tests.helpers import auth, login, register
from tests.suite import build_suite


async def _count(app, table) -> int:
    async with app.state.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def _replica(app, model, persona_id: str):
    async with app.state.database.sessionmaker() as session:
        return await session.get(model, uuid.UUID(persona_id))


async def _make_due(app) -> None:
    """Stands in for the passage of time: every retry is due now."""
    async with app.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(outbox_tables.delivery).values(next_attempt_at=utcnow()))
    app.state.relay.resting.clear()


async def test_event_is_written_only_if_the_change_commits(suite):
    outbox = suite.identity.state.outbox
    async with suite.identity.state.database.sessionmaker() as session:
        await outbox.publish(session, "persona.updated", "x", {"a": 1})
        await session.rollback()
    assert await _count(suite.identity, outbox_tables.event) == 0

    async with suite.identity.state.database.sessionmaker() as session:
        await outbox.publish(session, "persona.updated", "x", {"a": 1})
        await session.commit()
    assert await _count(suite.identity, outbox_tables.event) == 1
    assert (
        await _count(suite.identity, outbox_tables.delivery) == 6
    )  # feed, groups, moderation, records, media and identity (webhooks)


_RENAME = "UPDATE persona SET display_name = :name WHERE id = :persona RETURNING display_name"
_NAME = text("SELECT display_name FROM persona WHERE id = :id").bindparams(bindparam("id", type_=Uuid()))


def _renaming(persona_id: uuid.UUID, name: str) -> Then:
    return Then(_RENAME, {"name": name, "persona": persona_id}, types={"persona": Uuid()})


async def test_a_statement_after_the_events_runs_with_them_and_answers(suite):
    """``Then``: the caller's statement runs with the events' write (on PostgreSQL in the same
    statement), its answer returned; with no event it runs alone; rolled back, neither stays."""
    outbox = suite.identity.state.outbox
    database = suite.identity.state.database
    email = await register(suite.client, "ada")
    persona_id = uuid.UUID((await login(suite.client, email))["persona_id"])
    events_before = await _count(suite.identity, outbox_tables.event)
    deliveries_before = await _count(suite.identity, outbox_tables.delivery)
    executed: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        executed.append(statement)

    engine = database.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        async with database.sessionmaker() as session, session.begin():
            then = _renaming(persona_id, "Renamed")
            result = await outbox.publish_many(session, [("persona.updated", "x", {"a": 1})], then=then)
            assert result is not None and result.scalar_one() == "Renamed"
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert len(executed) == (1 if database.is_postgres else 3), executed
    assert await _count(suite.identity, outbox_tables.event) == events_before + 1
    assert await _count(suite.identity, outbox_tables.delivery) == deliveries_before + 6

    async with database.sessionmaker() as session:
        assert await session.scalar(_NAME, {"id": persona_id}) == "Renamed"
        result = await outbox.publish_many(session, [], then=_renaming(persona_id, "Alone"))
        assert result is not None and result.scalar_one() == "Alone"
        then = _renaming(persona_id, "Rolled back")
        await outbox.publish_many(session, [("persona.updated", "x", {"a": 2})], then=then)
        await session.rollback()
    assert await _count(suite.identity, outbox_tables.event) == events_before + 1
    async with database.sessionmaker() as session:
        assert await session.scalar(_NAME, {"id": persona_id}) == "Renamed"


async def test_retries_back_off_exponentially_with_jitter_up_to_a_cap(suite):
    relay = suite.identity.state.relay
    assert relay.max_backoff == 60.0
    for attempts, nominal in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (50, 60.0)):
        delays = [relay.backoff(attempts) for _ in range(200)]
        assert all(0.75 * nominal <= d <= 1.25 * nominal for d in delays), (
            attempts,
            min(delays),
            max(delays),
        )
        assert len(set(delays)) > 1  # jittered, so that retries of many deliveries spread out


async def test_down_subscriber_gets_its_events_when_it_comes_back(suite, monkeypatch):
    # The retry is scheduled an hour out, so that "not due yet" holds however slow the machine
    # (the real first delay is about a second); _make_due then stands in for the hour.
    monkeypatch.setattr(suite.identity.state.relay, "backoff", lambda attempts: 3600.0)
    suite.router.down.add("feed")
    email = await register(suite.client, "ada")
    persona_id = (await login(suite.client, email))["persona_id"]
    await suite.deliver()
    assert await _replica(suite.groups, GroupsPersonaReplica, persona_id) is not None
    assert await _replica(suite.feed, PersonaReplica, persona_id) is None

    async with suite.identity.state.database.sessionmaker() as session:
        row = (
            await session.execute(
                select(outbox_tables.delivery).where(outbox_tables.delivery.c.subscriber == "feed")
            )
        ).one()
    assert row.status == "pending"
    assert row.attempt_count == 1
    assert row.next_attempt_at > utcnow()

    suite.router.down.discard("feed")
    assert await suite.deliver() == 0  # backing off: not due yet
    await _make_due(suite.identity)
    assert await suite.deliver() == 1
    assert (await _replica(suite.feed, PersonaReplica, persona_id)).handle == "ada"


async def test_events_reach_a_subscriber_in_order_after_an_outage(suite, monkeypatch):
    # the first event's retry waits an hour, however slowly the machine runs the steps below
    monkeypatch.setattr(suite.identity.state.relay, "backoff", lambda attempts: 3600.0)
    suite.router.down.add("feed")
    email = await register(suite.client, "ada")
    tokens = await login(suite.client, email)
    await suite.deliver()
    for name in ("Ada L.", "Ada Lovelace"):
        resp = await suite.client.patch(
            f"/api/v1/personas/{tokens['persona_id']}",
            json={"display_name": name},
            headers=auth(tokens["access_token"]),
        )
        assert resp.status_code == 200, resp.text
    suite.router.down.discard("feed")
    # The later events are due now, but the first one is still backing off: nothing may
    # overtake it.
    await suite.deliver()
    assert await _replica(suite.feed, PersonaReplica, tokens["persona_id"]) is None
    await _make_due(suite.identity)
    assert await suite.deliver() == 3
    replica = await _replica(suite.feed, PersonaReplica, tokens["persona_id"])
    assert replica.display_name == "Ada Lovelace"


async def test_redelivered_events_apply_once(suite):
    event = {
        "id": str(uuid.uuid4()),
        "type": "persona.created",
        "source": "identity",
        "subject": str(uuid.uuid4()),
        "time": utcnow().isoformat(),
        "data": {
            "id": "x",
            "context": "professional",
            "handle": "ada",
            "display_name": "Ada",
            "status": "active",
            "updated_at": utcnow().isoformat(),
        },
    }
    token = suite.feed.state.settings.internal_token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}"}
    first = await suite.client.post("http://feed/internal/events", json={"events": [event]}, headers=headers)
    again = await suite.client.post("http://feed/internal/events", json={"events": [event]}, headers=headers)
    assert first.json() == {"received": 1, "applied": 1}
    assert again.json() == {"received": 1, "applied": 0}
    assert await _count(suite.feed, PersonaReplica.__table__) == 1


async def test_internal_endpoint_needs_the_service_token(suite):
    body = {"events": []}
    assert (await suite.client.post("http://feed/internal/events", json=body)).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (
        await suite.client.post("http://feed/internal/events", json=body, headers=wrong)
    ).status_code == 401
    # and the gateway does not expose it at all
    assert (await suite.client.post("/internal/events", json=body)).status_code == 404


async def test_events_committed_before_a_crash_are_delivered_after_restart(database_urls):
    """The process stops between commit and delivery (no relay ran); a new process over the
    same databases delivers what the old one left."""
    async with build_suite(database_urls) as first:
        email = await register(first.client, "ada")
        persona_id = (await login(first.client, email))["persona_id"]
    async with build_suite(database_urls) as second:
        assert await _replica(second.feed, PersonaReplica, persona_id) is None
        assert await second.deliver() == 6  # to feed, groups, moderation, records, media, identity (webhooks)
        assert (await _replica(second.feed, PersonaReplica, persona_id)).handle == "ada"


async def test_background_relay_delivers_without_being_asked(database_urls):
    overrides = {
        name: {"relay_enabled": True, "relay_interval_seconds": 0.05}
        for name in ("identity", "feed", "groups")
    }
    async with build_suite(database_urls, **overrides) as suite:
        email = await register(suite.client, "ada")
        persona_id = (await login(suite.client, email))["persona_id"]
        for _ in range(100):
            if await _replica(suite.feed, PersonaReplica, persona_id) is not None:
                break
            await asyncio.sleep(0.02)
        assert (await _replica(suite.feed, PersonaReplica, persona_id)).handle == "ada"


def _persona_event(**overrides):
    event = {
        "id": str(uuid.uuid4()),
        "type": "persona.created",
        "source": "identity",
        "subject": str(uuid.uuid4()),
        "time": utcnow().isoformat(),
        "data": {
            "context": "professional",
            "handle": "ada",
            "display_name": "Ada",
            "status": "active",
            "updated_at": utcnow().isoformat(),
        },
    }
    return {**event, **overrides}


async def test_the_same_event_delivered_twice_at_once_applies_once(suite):
    """Two relays (or a retry racing a slow first attempt) post the same event concurrently:
    both succeed, and it is applied once."""
    events = [_persona_event() for _ in range(5)]
    token = suite.feed.state.settings.internal_token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}"}

    async def post():
        return await suite.client.post(
            "http://feed/internal/events", json={"events": events}, headers=headers
        )

    answers = await asyncio.gather(*(post() for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert sum(a.json()["applied"] for a in answers) == 5
    assert await _count(suite.feed, PersonaReplica.__table__) == 5


@pytest.mark.postgres
async def test_only_one_replica_relays_a_source_at_a_time(suite):
    """While another replica holds the source's relay lock, a pass sends nothing, so a later
    event of a subject can never overtake an earlier one held by the other replica."""
    await register(suite.client, "ada")
    relay = suite.identity.state.relay
    async with suite.identity.state.database.sessionmaker() as other, other.begin():
        assert await other.scalar(select(func.pg_try_advisory_xact_lock(relay.lock_key)))
        assert await relay.deliver_once() == 0
    assert await relay.deliver_once() == 6  # feed, groups, moderation, records, media, identity's webhooks


async def test_a_backlog_of_large_events_is_delivered_within_the_subscribers_body_limit(database_urls):
    """A subscriber refuses a body over its limit with a 413; a batch of events that together
    pass it would be refused again at every retry. The relay sends them in requests that fit."""
    async with build_suite(database_urls, feed={"max_body_size": 8192}) as suite:
        relay = suite.identity.state.relay
        relay.max_batch_bytes = 4096
        suite.router.down.add("feed")
        email = await register(suite.client, "ada")
        tokens = await login(suite.client, email)
        async with suite.identity.state.database.sessionmaker() as session:
            created = (
                await session.scalars(
                    select(outbox_tables.event.c.data).where(outbox_tables.event.c.type == "persona.created")
                )
            ).one()
        data = json.loads(created)
        outbox = suite.identity.state.outbox
        for n in range(12):  # each event 1 kB of data: 12 kB together, over feed's 8 kB limit
            async with suite.identity.state.database.sessionmaker() as session, session.begin():
                changed = {**data, "display_name": f"Ada {n}", "padding": "x" * 1000}
                await outbox.publish(session, "persona.updated", tokens["persona_id"], changed)
        await suite.deliver()
        suite.router.down.discard("feed")
        await _make_due(suite.identity)
        assert await suite.deliver() == 13
        async with suite.identity.state.database.sessionmaker() as session:
            statuses = (
                await session.scalars(
                    select(outbox_tables.delivery.c.status).where(
                        outbox_tables.delivery.c.subscriber == "feed"
                    )
                )
            ).all()
        assert statuses == ["delivered"] * 13
        assert (await _replica(suite.feed, PersonaReplica, tokens["persona_id"])).display_name == "Ada 11"


async def test_the_relay_is_woken_when_the_change_commits_not_before(suite):
    """Woken before the commit, the relay found nothing and slept its whole interval: the
    event then waited up to a second for a change already committed."""
    outbox = suite.identity.state.outbox
    async with suite.identity.state.database.sessionmaker() as session:
        outbox.wakeup.clear()
        await outbox.publish(session, "persona.updated", "x", {"a": 1})
        await outbox.publish(session, "persona.updated", "y", {"a": 2})
        assert not outbox.wakeup.is_set()
        await session.rollback()
        assert not outbox.wakeup.is_set()
        await outbox.publish(session, "persona.updated", "x", {"a": 1})
        await session.commit()
        assert outbox.wakeup.is_set()


@pytest.mark.parametrize("many", [False, True], ids=["publish", "publish_many"])
async def test_a_subscriber_receives_only_events_with_the_fields_it_asks_for(suite, many):
    """Groups asks feed for content events that name a group (``only_with``): the same types
    without one, or with it null, go to every other subscriber and not to groups."""
    outbox = suite.feed.state.outbox
    assert [s.only_with for s in outbox.subscribers if s.name == "groups"] == [["group_id"]]
    events = [
        ("comment.created", "a", {"id": "1", "group_id": str(uuid.uuid4())}),
        ("comment.created", "b", {"id": "2", "group_id": None}),
        ("reaction.added", "c", {"post_id": "3"}),
    ]
    async with suite.feed.state.database.sessionmaker() as session:
        if many:
            await outbox.publish_many(session, events)
        else:
            for event_type, subject, data in events:
                await outbox.publish(session, event_type, subject, data)
        await session.commit()
    async with suite.feed.state.database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(feed_outbox.event.c.subject, feed_outbox.delivery.c.subscriber)
                .join(feed_outbox.delivery, feed_outbox.delivery.c.event_seq == feed_outbox.event.c.seq)
                .order_by(feed_outbox.event.c.subject, feed_outbox.delivery.c.subscriber)
            )
        ).all()
    by_event: dict[str, list[str]] = {}
    for subject, subscriber in rows:
        by_event.setdefault(subject, []).append(subscriber)
    assert by_event == {"a": ["groups", "identity"], "b": ["identity"], "c": ["identity"]}


async def test_a_pass_that_claimed_less_than_a_batch_sleeps_until_the_next_commit(suite):
    """After a pass that found every due delivery, the relay waits to be woken rather than
    running another pass to find nothing (four statements after every write); a pass that
    claimed a whole batch runs again at once, as more may be due."""
    relay = suite.identity.state.relay
    outbox = suite.identity.state.outbox
    relay.interval = 30.0  # only a wake-up can start a pass within the test
    relay.batch_size = 4
    passes: list[int] = []
    deliver_once = relay.deliver_once

    async def counted() -> int:
        sent = await deliver_once()
        passes.append(sent)
        return sent

    async def until(condition) -> None:
        for _ in range(200):
            if condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(passes)

    relay.deliver_once = counted
    task = asyncio.create_task(relay.run())
    try:
        await until(lambda: passes == [0])  # nothing due yet
        async with suite.identity.state.database.sessionmaker() as session:
            await outbox.publish(session, "persona.updated", "x", {"a": 1})
            await session.commit()  # six deliveries: a whole batch of four, then two
        await until(lambda: len(passes) >= 3)
        await asyncio.sleep(0.3)
        assert passes == [0, 4, 2]
    finally:
        relay.stopping.set()
        await task


async def test_commits_within_the_linger_go_to_each_subscriber_in_one_request(suite):
    """After a commit wakes it, the relay waits ``linger`` seconds before its pass: a second
    commit within that time goes out in the same request to each subscriber, instead of a
    request of its own (decision 0050). Stopping does not wait for the linger to end."""
    relay = suite.identity.state.relay
    outbox = suite.identity.state.outbox
    relay.interval = 30.0  # only a wake-up can start a pass within the test
    relay.linger = 0.6
    sent: list[tuple[str, list[str]]] = []
    send = relay._send

    async def counted(subscriber, batch) -> str | None:
        sent.append((subscriber.name, [row.subject for row in batch]))
        return await send(subscriber, batch)

    async def publish(subject: str) -> None:
        async with suite.identity.state.database.sessionmaker() as session:
            await outbox.publish(session, "persona.updated", subject, {"a": 1})
            await session.commit()

    relay._send = counted
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.1)  # the first pass, on start, finds nothing
        await publish("a")
        await asyncio.sleep(0.2)
        await publish("b")
        for _ in range(200):
            if len(sent) >= 6:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert sorted(sent) == sorted((name, ["a", "b"]) for name in relay.by_name)

        relay.linger = 30.0
        await publish("c")
        await asyncio.sleep(0.1)  # lingering now
    finally:
        relay.stopping.set()
        await asyncio.wait_for(task, 2)
    assert len(sent) == 6  # "c" waited for the linger, which stopping cut short
