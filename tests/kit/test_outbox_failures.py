"""Events that cannot jam the relay: a malformed event is dead-lettered and acknowledged, a
passing fault is retried, and a delivery refused too many times fails visibly and waits for an
operator's retry (decision 0022)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update

from kit.errors import ServiceUnavailable
from kit.outbox import Consumer, IdEvent, main, retry_failed
from kit.timeutil import utcnow
from services.feed import events as feed_events
from services.feed.models import MembershipReplica, PersonaReplica
from services.feed.models import outbox_tables as feed_outbox
from services.groups.models import Activity
from services.groups.models import outbox_tables as groups_outbox
from services.identity.models import outbox_tables as identity_outbox
from tests.helpers import auth, login, register

INTERNAL = "http://{}/internal/events"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def outbox_log():
    """What kit.outbox logs (the suite's processes take over the root logger, so not caplog)."""
    handler = _Records()
    logger = logging.getLogger("kit.outbox")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def _rows(app, table, *conditions):
    async with app.state.database.sessionmaker() as session:
        return (await session.execute(select(table).where(*conditions).order_by(*table.primary_key))).all()


async def _count(app, table) -> int:
    async with app.state.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


def _dead_lettered(app, event_type: str) -> float:
    value = app.state.metrics.registry.get_sample_value("events_dead_lettered_total", {"type": event_type})
    return value or 0.0


async def _post(suite, service: str, *events):
    token = suite.feed.state.settings.internal_token.get_secret_value()
    return await suite.client.post(
        INTERNAL.format(service), json={"events": list(events)}, headers=auth(token)
    )


def _event(event_type: str, subject: str, data, **fields):
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "source": "groups",
        "subject": subject,
        "time": utcnow().isoformat(),
        "data": data,
        **fields,
    }


async def test_a_malformed_event_is_dead_lettered_once_and_the_next_of_its_subject_applies(suite, outbox_log):
    """Published and relayed for real: the malformed membership event is acknowledged (its
    delivery is done, not retried), stored, counted and logged without its data; the valid
    event behind it, of the same group, is applied."""
    group, persona = str(uuid.uuid4()), str(uuid.uuid4())
    secret = "private-note-" + uuid.uuid4().hex
    malformed = {"group_id": group, "role": "member", "note": secret}  # no persona_id
    valid = {"group_id": group, "persona_id": persona, "role": "member", "context": "professional"}
    outbox = suite.groups.state.outbox
    async with suite.groups.state.database.sessionmaker() as session, session.begin():
        bad_id = await outbox.publish(session, "membership.added", group, malformed)
        await outbox.publish(session, "membership.added", group, valid)
    assert await suite.deliver() == 8  # both events, to feed, moderation, records and identity
    assert [r.status for r in await _rows(suite.groups, groups_outbox.delivery)] == ["delivered"] * 8

    (letter,) = await _rows(suite.feed, feed_outbox.dead_letter)
    assert (letter.event_id, letter.type, letter.source, letter.subject) == (
        bad_id,
        "membership.added",
        "groups",
        group,
    )
    assert secret in letter.data and letter.occurred_at is not None
    assert "persona_id" in letter.error and secret not in letter.error
    async with suite.feed.state.database.sessionmaker() as session:
        assert await session.get(MembershipReplica, (uuid.UUID(persona), uuid.UUID(group))) is not None
    assert _dead_lettered(suite.feed, "membership.added") == 1
    lines = [m for m in outbox_log.messages if "dead-lettered" in m]
    assert len(lines) == 3  # by feed, moderation and records, which all read memberships
    for line in lines:
        assert str(bad_id) in line and "membership.added" in line and secret not in line

    # the same event again (a relay that missed the answer) is recognised, not stored twice
    raw = _event("membership.added", group, malformed, id=str(bad_id))
    again = await _post(suite, "feed", raw)
    assert again.status_code == 200 and again.json() == {"received": 1, "applied": 0}
    assert await _count(suite.feed, feed_outbox.dead_letter) == 1
    assert _dead_lettered(suite.feed, "membership.added") == 1


async def test_an_event_of_no_shape_is_dead_lettered_without_failing_its_batch(suite):
    """An event that is not even an event (no id, a list for data) is stored and counted; the
    valid events of its batch are applied, and the batch answers 200."""
    subject = str(uuid.uuid4())
    data = {"context": "professional", "handle": "ada", "display_name": "Ada", "status": "active"}
    first = _event("persona.created", subject, data, source="identity")
    shapeless = {"type": "persona.updated", "subject": subject, "data": ["not", "an", "object"]}
    resp = await _post(suite, "feed", first, shapeless, "not an event at all")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"received": 3, "applied": 1}
    letters = await _rows(suite.feed, feed_outbox.dead_letter)
    assert [(r.event_id, r.type, r.subject) for r in letters] == [
        (None, "persona.updated", subject),
        (None, "", ""),
    ]
    assert '"not","an","object"' in letters[0].data and "id: Field required" in letters[0].error
    assert _dead_lettered(suite.feed, "<malformed>") == 2
    async with suite.feed.state.database.sessionmaker() as session:
        assert (await session.get(PersonaReplica, uuid.UUID(subject))).handle == "ada"


async def test_groups_dead_letters_activity_it_cannot_read(suite):
    """The feed's activity events are checked by kit as well: a post without its author is
    stored as a dead letter, not recorded, and a subject that is no id is refused where the
    handler needs one."""
    post = _event(
        "post.created",
        str(uuid.uuid4()),
        {"id": str(uuid.uuid4()), "context": "professional", "created_at": utcnow().isoformat()},
        source="feed",
    )
    persona = _event(
        "persona.updated",
        "not-a-uuid",
        {"context": "professional", "handle": "ada", "display_name": "Ada", "status": "active"},
        source="identity",
    )
    resp = await _post(suite, "groups", post, persona)
    assert resp.status_code == 200 and resp.json() == {"received": 2, "applied": 0}
    letters = await _rows(suite.groups, groups_outbox.dead_letter)
    assert [(r.type, r.error.split(":")[0]) for r in letters] == [
        ("post.created", "data.author_id"),
        ("persona.updated", "subject"),
    ]
    assert await _count(suite.groups, Activity.__table__) == 0
    assert _dead_lettered(suite.groups, "post.created") == 1


async def test_a_valid_event_whose_handler_fails_is_answered_500_class_and_retried(suite, monkeypatch):
    """A passing fault (here the database answering 503) is not the event's fault: nothing is
    dead-lettered or marked processed, and the relay sends the event again later."""
    calls = []

    async def unavailable(session, event):
        calls.append(event.id)
        if len(calls) == 1:
            raise ServiceUnavailable("database down")
        await feed_events.on_persona_changed(session, event)

    consumer = Consumer(IdEvent[feed_events.PersonaChanged], unavailable)
    monkeypatch.setitem(feed_events.handlers, "persona.created", consumer)
    monkeypatch.setattr(suite.identity.state.relay, "backoff", lambda attempts: 0.0)
    email = await register(suite.client, "ada")
    persona_id = (await login(suite.client, email))["persona_id"]
    await suite.deliver()
    assert len(calls) == 2 and calls[0] == calls[1]
    assert await _count(suite.feed, feed_outbox.dead_letter) == 0
    async with suite.feed.state.database.sessionmaker() as session:
        assert (await session.get(PersonaReplica, uuid.UUID(persona_id))).handle == "ada"
    (feed,) = await _rows(
        suite.identity, identity_outbox.delivery, identity_outbox.delivery.c.subscriber == "feed"
    )
    assert (feed.status, feed.attempt_count) == ("delivered", 1)


async def _make_due(app) -> None:
    async with app.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(identity_outbox.delivery).values(next_attempt_at=utcnow()))
    app.state.relay.resting.clear()


async def _feed_deliveries(suite):
    delivery = identity_outbox.delivery
    return [
        (r.status, r.attempt_count)
        for r in await _rows(suite.identity, delivery, delivery.c.subscriber == "feed")
    ]


async def _rename(suite, tokens, name: str) -> None:
    resp = await suite.client.patch(
        f"/api/v1/personas/{tokens['persona_id']}",
        json={"display_name": name},
        headers=auth(tokens["access_token"]),
    )
    assert resp.status_code == 200, resp.text


async def test_a_delivery_refused_too_often_fails_holds_its_subject_and_is_sent_again_on_retry(
    suite, outbox_log
):
    relay = suite.identity.state.relay
    relay.max_attempts = 3
    registry = CollectorRegistry()
    relay.register_metrics(registry)
    suite.router.down.add("feed")
    ada = await login(suite.client, await register(suite.client, "ada"))
    for _ in range(3):
        await suite.deliver()
        await _make_due(suite.identity)
    assert await _feed_deliveries(suite) == [("failed", 3)]
    assert registry.get_sample_value("outbox_deliveries_failed_total", {"subscriber": "feed"}) == 1
    assert any("failed and wait for an operator" in m and "persona.created" in m for m in outbox_log.messages)

    # Feed is back. Another persona's event goes through; Ada's later event must not overtake
    # her failed one, so it fails behind it (visible, never silently stuck).
    suite.router.down.discard("feed")
    await _rename(suite, ada, "Ada Lovelace")
    bob = await login(suite.client, await register(suite.client, "bob"))
    await suite.deliver()
    assert await _feed_deliveries(suite) == [("failed", 3), ("failed", 0), ("delivered", 0)]
    assert registry.get_sample_value("outbox_deliveries_failed_total", {"subscriber": "feed"}) == 2
    async with suite.feed.state.database.sessionmaker() as session:
        assert await session.get(PersonaReplica, uuid.UUID(ada["persona_id"])) is None
        assert await session.get(PersonaReplica, uuid.UUID(bob["persona_id"])) is not None

    # The operator's retry sends both again, in their order, from a first attempt.
    assert await retry_failed(suite.identity.state.database, identity_outbox, subscriber="groups") == 0
    assert await retry_failed(suite.identity.state.database, identity_outbox, subscriber="feed") == 2
    assert await _feed_deliveries(suite) == [("pending", 0), ("pending", 0), ("delivered", 0)]
    assert await suite.deliver() == 2
    async with suite.feed.state.database.sessionmaker() as session:
        assert (
            await session.get(PersonaReplica, uuid.UUID(ada["persona_id"]))
        ).display_name == "Ada Lovelace"


async def test_the_operator_command_lists_and_retries_failed_deliveries(
    suite, database_urls, monkeypatch, capsys
):
    relay = suite.identity.state.relay
    relay.max_attempts = 1
    suite.router.down.add("feed")
    await register(suite.client, "ada")
    await suite.deliver()
    assert await _feed_deliveries(suite) == [("failed", 1)]
    monkeypatch.setenv("IDENTITY_DATABASE_URL", database_urls["identity"])
    assert await asyncio.to_thread(main, ["failed", "identity"]) == 0
    assert capsys.readouterr().out == "feed: 1\n"
    assert await asyncio.to_thread(main, ["retry", "identity", "--subscriber", "feed"]) == 0
    assert capsys.readouterr().out == "1 failed deliveries queued again\n"
    assert await asyncio.to_thread(main, ["failed", "identity"]) == 0
    assert capsys.readouterr().out == "no failed deliveries\n"
    suite.router.down.discard("feed")
    relay.resting.clear()  # the relay's rest after the last refusal (at most a minute) is over
    assert await suite.deliver() == 1
    assert await _feed_deliveries(suite) == [("delivered", 0)]


def _persona_event(event_type: str, subject: str, seconds: int, **data):
    at = utcnow().replace(microsecond=0) + timedelta(seconds=seconds)
    fields = {"context": "professional", "status": "active", **data}
    return _event(event_type, subject, fields, source="identity", time=at.isoformat())


async def test_a_delivery_is_applied_in_one_transaction_each_handler_reading_afresh(suite, monkeypatch):
    """Three events of one persona in one request: one transaction (decision 0051), and each
    handler reads the replica as the event before it left it. Here the handler keeps what it
    read for the delivery's later events, as ``delivery_scope`` lets handlers do; the replica
    is written in bulk, which no loaded object sees, so a later handler of the same session
    would otherwise be handed the stale object and write its old name back."""
    kept: list[object] = []

    async def keeping(session, event):
        kept.append(await session.get(PersonaReplica, event.subject))
        await feed_events.on_persona_changed(session, event)

    for event_type in ("persona.created", "persona.updated"):
        monkeypatch.setitem(
            feed_events.handlers, event_type, Consumer(IdEvent[feed_events.PersonaChanged], keeping)
        )
    subject = str(uuid.uuid4())
    events = [
        _persona_event("persona.created", subject, 0, handle="ada", display_name="Ada"),
        _persona_event("persona.updated", subject, 1, display_name="Ada Lovelace"),
        _persona_event("persona.updated", subject, 2, handle="ada_l"),
    ]
    began: list[object] = []
    engine = suite.feed.state.database.engine.sync_engine

    def begin(connection) -> None:
        began.append(connection)

    sa_event.listen(engine, "begin", begin)
    try:
        resp = await _post(suite, "feed", *events)
    finally:
        sa_event.remove(engine, "begin", begin)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"received": 3, "applied": 3}
    assert len(began) == 1
    async with suite.feed.state.database.sessionmaker() as session:
        replica = await session.get(PersonaReplica, uuid.UUID(subject))
    assert (replica.handle, replica.display_name) == ("ada_l", "Ada Lovelace")


async def test_an_event_that_fails_in_a_delivery_costs_the_events_before_it_nothing(suite, monkeypatch):
    """The delivery's transaction fails at the second event; each is then applied alone: the
    first is kept, the second answers 503 and the third waits for the relay's next attempt,
    which finds the first applied (decision 0051)."""
    subjects = [str(uuid.uuid4()) for _ in range(3)]
    calls: list[str] = []

    async def failing_second(session, event):
        calls.append(str(event.subject))
        if str(event.subject) == subjects[1]:
            raise ServiceUnavailable("database down")
        await feed_events.on_persona_changed(session, event)

    monkeypatch.setitem(
        feed_events.handlers, "persona.created", Consumer(IdEvent[feed_events.PersonaChanged], failing_second)
    )
    events = [
        _persona_event("persona.created", subject, 0, handle=f"p{n}", display_name=f"P{n}")
        for n, subject in enumerate(subjects)
    ]
    resp = await _post(suite, "feed", *events)
    assert resp.status_code == 503, resp.text
    assert calls == [subjects[0], subjects[1], subjects[0], subjects[1]]
    async with suite.feed.state.database.sessionmaker() as session:
        found = [await session.get(PersonaReplica, uuid.UUID(s)) for s in subjects]
    assert [replica is not None for replica in found] == [True, False, False]
    assert await _count(suite.feed, feed_outbox.dead_letter) == 0
