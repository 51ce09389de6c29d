"""The transactional outbox: events written with the change, delivered at least once.

``Outbox.publish`` adds an event, and one delivery row per subscribed service, to the caller's
session, so the event commits or rolls back with the change itself; ``publish_many`` can carry
the caller's last statement in the same round trip (``Then``). ``Relay`` (one asyncio task
per process) claims due deliveries, posts them in batches to each subscriber's
``/internal/events`` with the shared service token, and marks them delivered or schedules a
retry with exponential back-off. Deliveries for one resource (the event's
subject) go out in the order they were written: while the oldest pending delivery of a subject
waits, none of that subject's later ones is sent. After a failure the relay rests that
subscriber until its retry is due instead of trying its other deliveries at once.
A delivery still refused after ``max_attempts`` attempts is ``failed``: counted, logged and
kept for an operator, and the later deliveries of its subject to that subscriber fail behind
it, so that ``python -m kit.outbox retry`` sends them all again in their order.
On PostgreSQL rows are claimed ``FOR UPDATE SKIP LOCKED``, so replicas never send the same
delivery at the same time, and a pass first takes a transaction-scoped advisory lock named after
the source: with several replicas one delivers at a time, so a replica can never send a later
event of a subject while another still holds an earlier one.

``event_receiver`` is the consuming side: idempotent by event id, also when the same event
arrives twice at once. Each handler declares the model its event must match (``Consumer``); an
event that does not match is stored in ``dead_letter_event`` and acknowledged, never retried,
since no retry could make it valid.

    python -m kit.outbox failed feed                     (failed deliveries per subscriber)
    python -m kit.outbox retry feed [--subscriber groups] (send them again)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import random
import uuid
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

import httpx
from fastapi import APIRouter, Depends, Request
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    Uuid,
    bindparam,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import event as orm_event
from sqlalchemy.engine import Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database, UTCDateTime, upsert
from kit.ids import new_id
from kit.internal import ServiceToken
from kit.metrics import HTTPMetrics
from kit.settings import Subscriber
from kit.timeutil import utcnow

log = logging.getLogger("kit.outbox")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# With the back-off's default 60 s cap, 1500 attempts span about 25 hours (decision 0022):
# a subscriber may be down for a day before its deliveries fail.
MAX_ATTEMPTS = 1500
# A delivery's event data, at most: a quarter of a service's default body limit
# (``ServiceSettings.max_body_size``, 1 MB), so that a batch of large events (a disposition's
# ids) is never refused for its size. ENVELOPE_BYTES stands for each event's envelope.
MAX_BATCH_BYTES = 256 * 1024
ENVELOPE_BYTES = 256
ERROR_LENGTH = 1000
HELD = "held behind an earlier failed delivery of its subject"


class OutboxTables:
    """The outbox's four tables, on a service's own metadata."""

    def __init__(self, metadata: MetaData) -> None:
        self.event = Table(
            "outbox_event",
            metadata,
            Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
            Column("id", Uuid, nullable=False, unique=True),
            Column("type", String(100), nullable=False),
            Column("subject", String(100), nullable=False),
            Column("data", Text, nullable=False),
            Column("occurred_at", UTCDateTime, nullable=False),
            Index("ix_outbox_event_occurred_at", "occurred_at"),
        )
        self.delivery = Table(
            "outbox_delivery",
            metadata,
            Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
            Column(
                "event_seq", BigInteger, ForeignKey("outbox_event.seq", ondelete="CASCADE"), nullable=False
            ),
            Column("subscriber", String(100), nullable=False),
            Column("status", String(20), nullable=False),
            Column("attempt_count", Integer, nullable=False, default=0),
            Column("next_attempt_at", UTCDateTime, nullable=False),
            Column("last_error", String(300)),
            Column("delivered_at", UTCDateTime),
            Index("ix_outbox_delivery_due", "status", "id"),
            # Deleting an event (retention) deletes its deliveries by this column.
            Index("ix_outbox_delivery_event_seq", "event_seq"),
        )
        self.processed = Table(
            "processed_event",
            metadata,
            Column("id", Uuid, primary_key=True),
            Column("processed_at", UTCDateTime, nullable=False),
            Index("ix_processed_event_processed_at", "processed_at"),
        )
        # Received events that matched no handler's model. Their fields are kept as sent
        # (bounded), so an event without a valid id or time is stored too.
        self.dead_letter = Table(
            "dead_letter_event",
            metadata,
            Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
            Column("event_id", Uuid),
            Column("type", String(100), nullable=False),
            Column("source", String(100), nullable=False),
            Column("subject", String(100), nullable=False),
            Column("occurred_at", UTCDateTime),
            Column("data", Text, nullable=False),
            Column("error", String(ERROR_LENGTH), nullable=False),
            Column("received_at", UTCDateTime, nullable=False),
            Index("ix_dead_letter_event_received_at", "received_at"),
        )


D = TypeVar("D")


class _Envelope(BaseModel):
    """What every event carries besides its subject and data."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    type: str = Field(max_length=100)
    source: str = Field(max_length=100)
    time: datetime


class Event(_Envelope, Generic[D]):
    """An event whose data is a ``D``; its subject is any text."""

    subject: str = Field(max_length=100)
    data: D


class IdEvent(_Envelope, Generic[D]):
    """An event whose data is a ``D`` and whose subject is the id of the resource it is about."""

    subject: uuid.UUID
    data: D


class EventIn(Event[dict[str, Any]]):
    """Any event, its data as sent: every received event is checked against it first."""


class EventBatch(BaseModel):
    # Each event is checked on its own (``event_receiver``): one malformed event must not make
    # the whole batch a 422, which its relay would send again and again.
    events: list[Any] = Field(max_length=1000)


M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Consumer(Generic[M]):
    """What a service does with one type of event: the model the whole event must match
    (usually ``Event[Data]`` or ``IdEvent[Data]``), and the function that applies it."""

    model: type[M]
    handle: Callable[[AsyncSession, M], Awaitable[None]]
    # True when applying the event again changes nothing (whatever the handler writes is keyed
    # by the event's id, or by the change it describes): the receiver then keeps no record of
    # having applied it, and an event whose consumers are all such costs no write where they
    # find nothing to do.
    idempotent: bool = False


# What a service's event handlers map each event type (or "*") to.
EventHandler = Consumer[Any]


@dataclass(frozen=True)
class Then:
    """A statement of the caller's that an outbox write runs after its own
    (``Outbox.publish_many``): on PostgreSQL in the same statement, the outbox's inserts
    becoming its ``WITH`` clauses, so that the two cost one round trip; on SQLite after them
    (decision 0054).

    ``sql`` is one plain statement (no ``WITH`` of its own), a constant of the caller's (each
    text is compiled once and kept), with ``:named`` parameters, none starting with
    ``outbox_``; ``types`` gives the SQL type of those that need one (a uuid on SQLite). On
    PostgreSQL it shares the snapshot of the outbox's inserts: it does not see the rows they
    write, and reads as the statement starts, so a lock it relies on must be taken by an
    earlier statement of the transaction."""

    sql: str
    params: Mapping[str, Any]
    types: Mapping[str, Any] = field(default_factory=dict)


class Outbox:
    def __init__(self, tables: OutboxTables, source: str, subscribers: list[Subscriber]) -> None:
        self.tables = tables
        self.source = source
        self.subscribers = subscribers
        self.wakeup = asyncio.Event()
        self._listening = f"kit.outbox.wakes:{id(self)}"  # the session.info key of _wake_after_commit
        # Built once: every write publishes, and a statement built anew pays for its cache key.
        event = tables.event
        self._insert_events = insert(event).returning(event.c.seq, sort_by_parameter_order=True)
        self._insert_deliveries = insert(tables.delivery)
        names = {"event": event.name, "delivery": tables.delivery.name}
        self._insert_both = text(_PUBLISH.format(**names))
        self._publish_then = _PUBLISH_THEN.format(**names)
        self._then: dict[tuple[bool, str], TextClause] = {}  # ``_then_statement``'s

    def _wants(self, subscriber: Subscriber, event_type: str, data: Mapping[str, Any]) -> bool:
        """Whether ``subscriber`` receives the event: its type matches one of the subscriber's
        patterns, and its data carries every field the subscriber asks for (``only_with``)."""
        return all(data.get(name) is not None for name in subscriber.only_with) and any(
            pattern == "*"
            or pattern == event_type
            or (pattern.endswith(".*") and event_type.startswith(pattern[:-1]))
            for pattern in subscriber.event_types
        )

    async def publish(
        self,
        session: AsyncSession,
        event_type: str,
        subject: str,
        data: Mapping[str, Any],
    ) -> uuid.UUID:
        """Add an event to the caller's transaction; the caller commits. Its id and time are
        the moment of publishing: a change that must not show at once is published later, not
        held back here with stamps that would date it."""
        return (await self._add(session, [(event_type, subject, data)]))[0][0]

    async def publish_many(
        self,
        session: AsyncSession,
        events: Sequence[tuple[str, str, Mapping[str, Any]]],
        *,
        then: Then | None = None,
    ) -> Result[Any] | None:
        """Adds many (type, subject, data) events at once, in that order: on PostgreSQL one
        statement for the events and their deliveries, however many (an erasure can announce
        thousands); on SQLite two. ``then``: a statement of the caller's, run in that same
        statement on PostgreSQL (``Then``); its result is returned."""
        if events:
            return (await self._add(session, events, then))[1]
        if then is not None:
            return await session.execute(self._then_statement(then, joined=False), then.params)
        return None

    def _then_statement(self, then: Then, *, joined: bool) -> TextClause:
        """``then``'s statement, built once: ``joined``, under the outbox's inserts
        (PostgreSQL), else on its own."""
        statement = self._then.get((joined, then.sql))
        if statement is None:
            sql = self._publish_then + then.sql if joined else then.sql
            statement = text(sql).bindparams(*(bindparam(name, type_=t) for name, t in then.types.items()))
            self._then[(joined, then.sql)] = statement
        return statement

    async def _add(
        self,
        session: AsyncSession,
        events: Sequence[tuple[str, str, Mapping[str, Any]]],
        then: Then | None = None,
    ) -> tuple[list[uuid.UUID], Result[Any] | None]:
        now = utcnow()
        ids = [new_id() for _ in events]
        texts = [json.dumps(data, default=str, separators=(",", ":")) for _, _, data in events]
        wanted = [
            [s.name for s in self.subscribers if self._wants(s, event_type, data)]
            for event_type, _, data in events
        ]
        result: Result[Any] | None = None
        if session.get_bind().dialect.name == "postgresql":
            params = {
                "outbox_ids": ids,
                "outbox_types": [event_type for event_type, _, _ in events],
                "outbox_subjects": [subject for _, subject, _ in events],
                "outbox_data": texts,
                "outbox_now": now,
                "outbox_pending": PENDING,
                "outbox_delivered_ids": [
                    event_id for event_id, names in zip(ids, wanted, strict=True) for _ in names
                ],
                "outbox_subscribers": [name for names in wanted for name in names],
            }
            if then is None:
                await session.execute(self._insert_both, params)
            else:
                result = await session.execute(
                    self._then_statement(then, joined=True), {**params, **then.params}
                )
        else:
            rows = [
                {
                    "id": event_id,
                    "type": event_type,
                    "subject": subject,
                    "data": data_text,
                    "occurred_at": now,
                }
                for event_id, (event_type, subject, _), data_text in zip(ids, events, texts, strict=True)
            ]
            added = await session.execute(self._insert_events, rows)
            deliveries = [
                {
                    "event_seq": seq,
                    "subscriber": name,
                    "status": PENDING,
                    "attempt_count": 0,
                    "next_attempt_at": now,
                }
                for seq, names in zip(added.scalars().all(), wanted, strict=True)
                for name in names
            ]
            if deliveries:
                await session.execute(self._insert_deliveries, deliveries)
            if then is not None:
                result = await session.execute(self._then_statement(then, joined=False), then.params)
        self._wake_after_commit(session)
        return ids, result

    def _wake_after_commit(self, session: AsyncSession) -> None:
        """Wakes the relay once the caller's transaction commits, not before: woken while the
        change is still uncommitted, it found nothing, went back to sleep for its whole
        interval, and the event waited up to that long (about a second). A rolled-back change
        wakes nothing. One listener per session, however many events it publishes."""
        sync = session.sync_session
        if not sync.info.get(self._listening):
            sync.info[self._listening] = True
            orm_event.listen(sync, "after_commit", self._wake)

    def _wake(self, _session: object) -> None:
        self.wakeup.set()


# ``Outbox._add`` on PostgreSQL: the events, numbered in the order given, and a delivery for each
# (event, subscriber) pair, in one statement and one round trip whatever their number. Arrays
# keep its text the same for any number of events, so it is prepared once per connection.
_ADDED = """WITH outbox_added AS (
    INSERT INTO {event} (id, type, subject, data, occurred_at)
    SELECT e.id, e.type, e.subject, e.data, CAST(:outbox_now AS timestamptz)
    FROM unnest(
        CAST(:outbox_ids AS uuid[]), CAST(:outbox_types AS text[]), CAST(:outbox_subjects AS text[]),
        CAST(:outbox_data AS text[])
    ) WITH ORDINALITY AS e(id, type, subject, data, n)
    ORDER BY e.n
    RETURNING id, seq
)"""
_DELIVERIES = """INSERT INTO {delivery} (event_seq, subscriber, status, attempt_count, next_attempt_at)
SELECT outbox_added.seq, d.subscriber, :outbox_pending, 0, CAST(:outbox_now AS timestamptz)
FROM outbox_added
JOIN unnest(CAST(:outbox_delivered_ids AS uuid[]), CAST(:outbox_subscribers AS text[])) AS d(id, subscriber)
    ON d.id = outbox_added.id"""
_PUBLISH = f"{_ADDED}\n{_DELIVERIES}"
# The same with a ``Then`` statement after it: the deliveries' insert becomes a WITH clause too
# (PostgreSQL runs every data-modifying WITH clause, read or not), and the caller's statement
# is the main one.
_PUBLISH_THEN = f"{_ADDED},\noutbox_delivered AS (\n{_DELIVERIES}\n)\n"


def _claim_statement(t: OutboxTables) -> Any:
    """The oldest pending deliveries with their events, and whether an earlier delivery of the
    same subject to the same subscriber has failed (``held``: it must not be overtaken)."""
    earlier = t.delivery.alias("earlier")
    earlier_event = t.event.alias("earlier_event")
    held = (
        exists()
        .where(
            earlier.c.status == FAILED,
            earlier.c.subscriber == t.delivery.c.subscriber,
            earlier.c.id < t.delivery.c.id,
            earlier_event.c.seq == earlier.c.event_seq,
            earlier_event.c.subject == t.event.c.subject,
        )
        .label("held")
    )
    return (
        select(
            t.delivery.c.id,
            t.delivery.c.subscriber,
            t.delivery.c.attempt_count,
            t.delivery.c.next_attempt_at,
            t.event.c.id.label("event_id"),
            t.event.c.type,
            t.event.c.subject,
            t.event.c.data,
            t.event.c.occurred_at,
            held,
        )
        .join(t.event, t.event.c.seq == t.delivery.c.event_seq)
        .where(t.delivery.c.status == PENDING)
        .order_by(t.delivery.c.id)
        .limit(bindparam("batch_size"))
    )


class Relay:
    """Delivers pending events; run one per process with ``run()`` as a background task.

    ``failed`` counts, per subscriber, the deliveries that became ``failed``; it joins an
    app's metrics with ``register_metrics``."""

    def __init__(
        self,
        outbox: Outbox,
        database: Database,
        *,
        token: str,
        client: httpx.AsyncClient,
        interval: float = 1.0,
        linger: float = 0.0,
        batch_size: int = 100,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        timeout: float = 5.0,
        max_backoff: float = 60.0,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.outbox = outbox
        self.database = database
        self.token = token
        self.client = client
        self.interval = interval
        self.linger = linger
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.by_name = {s.name: s for s in outbox.subscribers}
        self.stopping = asyncio.Event()
        self.resting: dict[str, datetime] = {}
        self._claimed_full = False  # whether the last pass claimed a whole batch
        digest = hashlib.blake2b(f"outbox:{outbox.source}".encode(), digest_size=8).digest()
        self.lock_key = int.from_bytes(digest, "big", signed=True)
        # Built once (decision 0049): every pass runs them.
        self._turn = select(func.pg_try_advisory_xact_lock(self.lock_key))
        self._claim_unlocked = _claim_statement(outbox.tables)
        self._claim_locked = self._claim_unlocked.with_for_update(skip_locked=True, of=outbox.tables.delivery)
        delivery = outbox.tables.delivery
        self._mark_delivered = (
            update(delivery)
            .where(delivery.c.id.in_(bindparam("ids", expanding=True)))
            .values(status=DELIVERED, delivered_at=bindparam("at"), last_error=None)
        )
        self.failed = Counter(
            "outbox_deliveries_failed",
            "Event deliveries that stopped being retried and wait for an operator, by subscriber.",
            ["subscriber"],
            registry=None,
        )

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Exposes the relay's series with the app's own (``kit.metrics``)."""
        registry.register(self.failed)

    def backoff(self, attempt_count: int) -> float:
        base: float = min(self.max_backoff, 0.5 * 2 ** min(attempt_count, 20))
        return base * (0.75 + random.random() / 2)  # noqa: S311 - jitter, not security

    async def run(self) -> None:
        while not self.stopping.is_set():
            # Cleared before the pass, not after it: a commit during the pass wakes the next one.
            self.outbox.wakeup.clear()
            try:
                sent = await self.deliver_once()
            except Exception:  # a relay must outlive any one failure
                log.exception("relay pass failed")
                sent = 0
            if sent and self._claimed_full:
                continue  # more may be due at once; a pass that claimed less found them all
            await self._until_due()

    async def _until_due(self) -> None:
        """Waits for a commit (or the interval), then ``linger`` seconds more, so that the
        commits of those milliseconds go out in the same requests: at a few writes a second
        each write would otherwise cost a request to every subscriber (decision 0050)."""
        wake = asyncio.create_task(self.outbox.wakeup.wait())
        stop = asyncio.create_task(self.stopping.wait())
        done, _ = await asyncio.wait({wake, stop}, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
        wake.cancel()
        stop.cancel()
        if wake in done and self.linger > 0 and not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.linger)

    async def deliver_once(self) -> int:
        """One pass: claim due deliveries, send them, record the outcome. Returns how many
        were delivered.

        On PostgreSQL the claimed rows stay locked (FOR UPDATE SKIP LOCKED) until their outcome
        is recorded, so replicas never send the same row at once. SQLite has a single writer,
        and a subscriber may be this very process (identity receives its own events): there no
        transaction stays open while sending, and each outcome is recorded in its own."""
        failed: Tally[str] = Tally()
        if self.database.is_postgres:
            async with self.database.sessionmaker() as session, session.begin():
                turn = await session.scalar(self._turn)
                if not turn:
                    return 0  # another replica is delivering this source's events
                rows = await self._claim(session, lock=True)
                delivered = await self._deliver(rows, session, failed)
        else:
            async with self.database.sessionmaker() as session:
                rows = await self._claim(session, lock=False)
            delivered = await self._deliver(rows, None, failed)
        for name, count in failed.items():  # counted once their new status is committed
            self.failed.labels(name).inc(count)
        return delivered

    async def _claim(self, session: AsyncSession, *, lock: bool) -> list[Any]:
        claim = self._claim_locked if lock else self._claim_unlocked
        rows = list((await session.execute(claim, {"batch_size": self.batch_size})).all())
        self._claimed_full = len(rows) >= self.batch_size
        return rows

    async def _deliver(self, rows: list[Any], session: AsyncSession | None, failed: Tally[str]) -> int:
        now = utcnow()
        delivered = 0
        batches: dict[str, list[Any]] = {}
        blocked: set[tuple[str, str]] = set()
        held: list[Any] = []
        done: list[int] = []
        for row in rows:
            key = (row.subscriber, row.subject)
            if key in blocked:
                continue
            if row.held:
                held.append(row)
                blocked.add(key)
                continue
            resting = self.resting.get(row.subscriber)
            if row.next_attempt_at > now or row.subscriber not in self.by_name or (resting and resting > now):
                blocked.add(key)
                continue
            batches.setdefault(row.subscriber, []).append(row)
        if held:
            await self._fail(session, held, HELD, failed)
        for name, rows_for in batches.items():
            for batch in self._bounded(rows_for):
                error = await self._send(self.by_name[name], batch)
                if error is not None:
                    # The later rows wait, unattempted, while the subscriber rests: none may
                    # overtake the refused ones.
                    await self._retry_later(session, name, batch, error, failed)
                    break
                delivered += len(batch)
                self.resting.pop(name, None)
                if session is None:  # SQLite: each outcome in a transaction of its own, at once
                    await self._delivered(None, [r.id for r in batch])
                else:
                    done.extend(r.id for r in batch)
        if done:  # PostgreSQL: one statement for the pass, its rows locked until it commits
            await self._delivered(session, done)
        return delivered

    async def _delivered(self, session: AsyncSession | None, ids: list[int]) -> None:
        params = {"ids": ids, "at": utcnow()}
        if session is not None:
            await session.execute(self._mark_delivered, params)
            return
        async with self.database.sessionmaker() as own, own.begin():
            await own.execute(self._mark_delivered, params)

    def _bounded(self, rows: list[Any]) -> Iterator[list[Any]]:
        """``rows`` in order, in requests of at most ``max_batch_bytes`` of event data (an
        event larger than that goes alone), so that a subscriber's body limit never refuses a
        delivery for its size, again and again, however large the events a backlog holds."""
        batch: list[Any] = []
        size = 0
        for row in rows:
            length = len(row.data) + ENVELOPE_BYTES
            if batch and size + length > self.max_batch_bytes:
                yield batch
                batch, size = [], 0
            batch.append(row)
            size += length
        if batch:
            yield batch

    async def _retry_later(
        self, session: AsyncSession | None, name: str, batch: list[Any], error: str, failed: Tally[str]
    ) -> None:
        """Each delivery of a refused batch has had one more attempt; those that reach
        ``max_attempts`` fail, the others wait for their retry while the subscriber rests."""
        attempts = max(r.attempt_count for r in batch) + 1
        retry_at = utcnow() + timedelta(seconds=self.backoff(attempts))
        self.resting[name] = retry_at
        log.warning("delivery to %s failed (attempt %d): %s", name, attempts, error)
        spent = [r for r in batch if r.attempt_count + 1 >= self.max_attempts]
        again = [r.id for r in batch if r.attempt_count + 1 < self.max_attempts]
        if again:
            attempt_count = self.outbox.tables.delivery.c.attempt_count
            values = {
                "attempt_count": attempt_count + 1,
                "next_attempt_at": retry_at,
                "last_error": error[:300],
            }
            await self._record(session, again, values)
        if spent:
            await self._fail(session, spent, error, failed, attempted=True)

    async def _fail(
        self,
        session: AsyncSession | None,
        rows: list[Any],
        error: str,
        failed: Tally[str],
        *,
        attempted: bool = False,
    ) -> None:
        """Marks deliveries ``failed``: the relay no longer sends them, an operator retries them.
        The log names events by id and type, never their data."""
        values: dict[str, Any] = {"status": FAILED, "last_error": error[:300]}
        if attempted:
            values["attempt_count"] = self.outbox.tables.delivery.c.attempt_count + 1
        await self._record(session, [r.id for r in rows], values)
        for name in {r.subscriber for r in rows}:
            mine = [r for r in rows if r.subscriber == name]
            failed[name] += len(mine)
            log.warning(
                "%d deliveries to %s failed and wait for an operator, the first of %s event %s: %s",
                len(mine),
                name,
                mine[0].type,
                mine[0].event_id,
                error,
            )

    async def _record(self, session: AsyncSession | None, ids: list[int], values: dict[str, Any]) -> None:
        statement = (
            update(self.outbox.tables.delivery)
            .where(self.outbox.tables.delivery.c.id.in_(ids))
            .values(**values)
        )
        if session is not None:
            await session.execute(statement)
            return
        async with self.database.sessionmaker() as own, own.begin():
            await own.execute(statement)

    async def _send(self, subscriber: Subscriber, batch: list[Any]) -> str | None:
        events = [
            {
                "id": str(r.event_id),
                "type": r.type,
                "source": self.outbox.source,
                "subject": r.subject,
                "time": r.occurred_at.isoformat(),
                "data": json.loads(r.data),
            }
            for r in batch
        ]
        url = str(subscriber.url).rstrip("/") + "/internal/events"
        try:
            resp = await self.client.post(
                url,
                json={"events": events},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}"
        if resp.status_code >= 300:
            return f"HTTP {resp.status_code}"
        return None


@dataclass
class _Checked:
    """A received event checked against its handlers' models: either each handler with its
    parsed event, or why the event is malformed."""

    raw: Any
    envelope: EventIn | None = None
    parsed: Sequence[tuple[EventHandler, BaseModel]] = ()
    error: str | None = None
    error_kinds: str = ""

    @property
    def label(self) -> str:
        return self.envelope.type if self.envelope is not None else "<malformed>"

    @property
    def wanted(self) -> bool:
        """Whether the receiver writes anything for the event: a handler applies it, or it is
        dead-lettered."""
        return self.error is not None or bool(self.parsed)


def _check(raw: Any, handlers: Mapping[str, EventHandler]) -> _Checked:
    """Validates the event as every event must be, then as each handler of its type wants it
    (the type's own first, then the one under ``"*"``)."""
    try:
        envelope = EventIn.model_validate(raw)
    except ValidationError as exc:
        return _Checked(raw, error=_describe(exc), error_kinds=_kinds(exc))
    parsed: list[tuple[EventHandler, BaseModel]] = []
    for consumer in (handlers.get(envelope.type), handlers.get("*")):
        if consumer is None:
            continue
        try:
            parsed.append((consumer, consumer.model.model_validate(raw)))
        except ValidationError as exc:
            return _Checked(raw, envelope, error=_describe(exc), error_kinds=_kinds(exc))
    return _Checked(raw, envelope, parsed)


def _describe(exc: ValidationError) -> str:
    """Where and why the event failed, without the values it held."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(event)'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )
    return problems[:ERROR_LENGTH]


def _kinds(exc: ValidationError) -> str:
    """Field paths and error types only: what a log line may carry."""
    return ", ".join(
        f"{'.'.join(str(part) for part in error['loc'])}:{error['type']}"
        for error in exc.errors(include_url=False, include_input=False)
    )[:300]


def _text(raw: Any, key: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    return "" if value is None else str(value)[:100]


def _dead_letter(checked: _Checked) -> dict[str, Any]:
    """The dead-letter row of a malformed event: what was sent, bounded."""
    raw, envelope = checked.raw, checked.envelope
    # A valid envelope has its data apart; of anything else, the whole of what was sent.
    data = envelope.data if envelope is not None else raw
    return {
        "event_id": envelope.id if envelope is not None else None,
        "type": envelope.type if envelope is not None else _text(raw, "type"),
        "source": envelope.source if envelope is not None else _text(raw, "source"),
        "subject": envelope.subject if envelope is not None else _text(raw, "subject"),
        "occurred_at": envelope.time if envelope is not None else None,
        "data": json.dumps(data, default=str, separators=(",", ":")),
        "error": checked.error or "",
        "received_at": utcnow(),
    }


def _dead_letters(request: Request) -> Counter | None:
    metrics: HTTPMetrics | None = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return None
    return metrics.counter(
        "events_dead_lettered",
        "Received events that matched no handler's model: stored in dead_letter_event, never applied.",
        ["type"],
    )


def event_receiver(tables: OutboxTables, handlers: Mapping[str, EventHandler]) -> APIRouter:
    """``POST /internal/events``: applies each event once, in order; events of types with no
    handler are acknowledged and ignored. A handler under ``"*"`` sees every event, after the
    type's own handler.

    The events of a request are applied in one transaction; should anything in it fail, each
    is applied again in a transaction of its own, as if the first attempt had not been made
    (decision 0051). The outcome is the same either way: every event applied once, and an
    event that cannot be applied costs the others nothing.

    An event that does not match its handlers' models is dead-lettered: stored with the
    reason, counted, logged (id and type, never the data) and acknowledged. An event that
    matches but whose handler raises is answered with a 500, so its relay tries it again
    later: that is a passing fault, such as the database going away."""

    router = APIRouter(include_in_schema=False)

    @router.post("/internal/events", dependencies=[ServiceToken])
    async def receive_events(batch: EventBatch, request: Request) -> dict[str, int]:
        receiving = _Receiving(request.app.state.database, request.app.state.outbox, tables, handlers)
        work = [checked for checked in (_check(raw, handlers) for raw in batch.events) if checked.wanted]
        done = await receiving.together(work, request) if len(work) > 1 else None
        if done is None:
            done = await receiving.one_by_one(work, request)
        applied = sum(1 for c in done if c.error is None and c.label in handlers)
        return {"received": len(batch.events), "applied": applied}

    return router


@dataclass
class _Receiving:
    """Applies the events of one request of a relay (``event_receiver``)."""

    database: Database
    outbox: Outbox
    tables: OutboxTables
    handlers: Mapping[str, EventHandler]

    async def together(self, work: list[_Checked], request: Request) -> list[_Checked] | None:
        """All of ``work`` in one transaction: the events applied (those a concurrent delivery
        applied first are left out), or None, nothing written, when anything failed. Dead
        letters are reported once the transaction has committed."""
        delivery: dict[str, Any] = {}
        done: list[_Checked] = []
        try:
            async with self.database.sessionmaker() as session, session.begin():
                for checked in work:
                    if await self._apply(session, checked, delivery):
                        done.append(checked)
                    # Each handler starts from an empty identity map, as in a session of its
                    # own: none reads an object another left behind, stale after a bulk update.
                    await session.flush()
                    session.expunge_all()
        except Exception as exc:  # whatever it was, each event alone finds out again
            log.info("a delivery of %d events is applied one by one: %s", len(work), type(exc).__name__)
            return None
        for checked in done:
            if checked.error is not None:
                _report_dead_letter(request, checked)
        return done

    async def one_by_one(self, work: list[_Checked], request: Request) -> list[_Checked]:
        """Each of ``work`` in a transaction of its own: the events applied, each dead letter
        reported as it commits. Raises what a handler raised, the events before it kept."""
        delivery: dict[str, Any] = {}
        done: list[_Checked] = []
        for checked in work:
            envelope = checked.envelope
            try:
                async with self.database.sessionmaker() as session, session.begin():
                    if not await self._apply(session, checked, delivery):
                        continue
            except IntegrityError:
                if envelope is None or not await _processed(self.database, self.tables, envelope.id):
                    raise
                continue  # applied meanwhile by a concurrent delivery of the same event
            if checked.error is not None:
                _report_dead_letter(request, checked)
            done.append(checked)
        return done

    async def _apply(self, session: AsyncSession, checked: _Checked, delivery: dict[str, Any]) -> bool:
        """Applies one event in the session's transaction; False when a delivery of the same
        event did already."""
        envelope = checked.envelope
        # Recording the event first claims it: a concurrent delivery of the same event waits
        # on this row, then finds it there and applies nothing. Events whose every consumer
        # is idempotent need no such record.
        claim = envelope is not None and (checked.error is not None or recorded(self.handlers, envelope.type))
        if claim and envelope is not None and not await _first_time(session, self.tables, envelope.id):
            return False
        if checked.error is not None:
            await session.execute(insert(self.tables.dead_letter).values(**_dead_letter(checked)))
            return True
        # A handler that has events of its own to tell publishes them in the same transaction
        # (``handler_outbox``).
        session.info["outbox"] = self.outbox
        session.info["delivery"] = delivery
        for consumer, event in checked.parsed:
            await consumer.handle(session, event)
        return True


def recorded(handlers: Mapping[str, EventHandler], event_type: str) -> bool:
    """Whether a receiver with ``handlers`` records an event of ``event_type`` as processed
    (``processed_event``): when any of the consumers it applies is not idempotent."""
    consumers = [c for c in (handlers.get(event_type), handlers.get("*")) if c is not None]
    return any(not c.idempotent for c in consumers)


def _report_dead_letter(request: Request, checked: _Checked) -> None:
    counter = _dead_letters(request)
    if counter is not None:
        counter.labels(checked.label).inc()
    event_id = checked.envelope.id if checked.envelope is not None else _text(checked.raw, "id")
    log.warning("dead-lettered %s event %s: %s", checked.label, event_id or "(no id)", checked.error_kinds)


async def _first_time(session: AsyncSession, tables: OutboxTables, event_id: uuid.UUID) -> bool:
    """Records the event as processed, in one statement; False when it already was. A
    concurrent delivery of the same event waits on the row until the first one's transaction
    ends: it then finds the event applied (or, rolled back, applies it itself)."""
    return await upsert(
        session, tables.processed, {"id": event_id, "processed_at": utcnow()}, ["id"], update=False
    )


async def _seen(session: AsyncSession, tables: OutboxTables, event_id: uuid.UUID) -> bool:
    found = await session.scalar(select(tables.processed.c.id).where(tables.processed.c.id == event_id))
    return found is not None


async def _processed(database: Database, tables: OutboxTables, event_id: uuid.UUID) -> bool:
    async with database.sessionmaker() as session:
        return await _seen(session, tables, event_id)


def delivery_scope(session: AsyncSession) -> dict[str, Any]:
    """A dict shared by the handlers of one delivery's events (one request of the relay), for
    a read whose answer may be as old as the delivery, made once for all its events instead
    of once each. Outside a delivery, an empty dict each time: nothing is kept."""
    scope: dict[str, Any] = session.info.get("delivery", {})
    return scope


def handler_outbox(session: AsyncSession) -> Outbox:
    """The receiving service's outbox, for an event handler running in ``session``."""
    outbox: Outbox = session.info["outbox"]
    return outbox


async def _outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.outbox
    return outbox


OutboxDep = Annotated[Outbox, Depends(_outbox)]


async def failed_deliveries(database: Database, tables: OutboxTables) -> dict[str, int]:
    """How many deliveries are ``failed``, per subscriber."""
    delivery = tables.delivery
    async with database.sessionmaker() as session:
        rows = await session.execute(
            select(delivery.c.subscriber, func.count())
            .where(delivery.c.status == FAILED)
            .group_by(delivery.c.subscriber)
            .order_by(delivery.c.subscriber)
        )
        return {name: int(count) for name, count in rows.all()}


async def retry_failed(database: Database, tables: OutboxTables, *, subscriber: str | None = None) -> int:
    """Sends failed deliveries (of one subscriber, or of all) again from their first attempt:
    they become pending, due now, and go out in their original order. Returns how many."""
    delivery = tables.delivery
    conditions = [delivery.c.status == FAILED]
    if subscriber is not None:
        conditions.append(delivery.c.subscriber == subscriber)
    async with database.sessionmaker() as session, session.begin():
        result: Any = await session.execute(
            update(delivery)
            .where(*conditions)
            .values(status=PENDING, attempt_count=0, next_attempt_at=utcnow())
        )
    return int(result.rowcount or 0)


async def _maintain(url: str, action: str, subscriber: str | None) -> str:
    # The tables are the same on every service's metadata; a fresh one needs no service code.
    tables = OutboxTables(MetaData())
    database = Database(url)
    try:
        if action == "retry":
            count = await retry_failed(database, tables, subscriber=subscriber)
            return f"{count} failed deliveries queued again"
        failed = await failed_deliveries(database, tables)
        return "\n".join(f"{name}: {count}" for name, count in failed.items()) or "no failed deliveries"
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    """The operator's command for failed deliveries; the service's database URL is read from
    ``<SERVICE>_DATABASE_URL`` as ``kit.migrate`` reads it."""
    from kit.migrate import database_url  # the command's own import: services never need it

    parser = argparse.ArgumentParser(prog="python -m kit.outbox")
    parser.add_argument("action", choices=["failed", "retry"])
    parser.add_argument("service", help="whose outbox it is: <SERVICE>_DATABASE_URL names its database")
    parser.add_argument("--subscriber", help="retry only the deliveries to this subscriber")
    args = parser.parse_args(argv)
    print(asyncio.run(_maintain(database_url(args.service), args.action, args.subscriber)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
