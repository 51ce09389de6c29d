"""The transactional outbox: events written with the change, delivered at least once.

``Outbox.publish`` adds an event, and one delivery row per subscribed service, to the caller's
session, so the event commits or rolls back with the change itself. ``Relay`` (one asyncio task
per process) claims due deliveries, posts them in batches to each subscriber's
``/internal/events`` with the shared service token, and marks them delivered or schedules a
retry with exponential back-off. Deliveries for one resource (the event's
subject) go out in the order they were written: while the oldest pending delivery of a subject
waits, none of that subject's later ones is sent. After a failure the relay rests that
subscriber until its retry is due instead of trying its other deliveries at once.
On PostgreSQL rows are claimed ``FOR UPDATE SKIP LOCKED``, so replicas never send the same
delivery at the same time, and a pass first takes a transaction-scoped advisory lock named after
the source: with several replicas one delivers at a time, so a replica can never send a later
event of a subject while another still holds an earlier one. ``event_receiver`` is the consuming
side: idempotent by event id, also when the same event arrives twice at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
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
    Uuid,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database, UTCDateTime
from kit.errors import Unauthorized
from kit.ids import new_id
from kit.settings import Subscriber
from kit.timeutil import utcnow

log = logging.getLogger("kit.outbox")

PENDING, DELIVERED = "pending", "delivered"


class OutboxTables:
    """The outbox's three tables, on a service's own metadata."""

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


class EventIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    type: str = Field(max_length=100)
    source: str = Field(max_length=100)
    subject: str = Field(max_length=100)
    time: datetime
    data: dict[str, Any]


class EventBatch(BaseModel):
    events: list[EventIn] = Field(max_length=1000)


class Outbox:
    def __init__(self, tables: OutboxTables, source: str, subscribers: list[Subscriber]) -> None:
        self.tables = tables
        self.source = source
        self.subscribers = subscribers
        self.wakeup = asyncio.Event()

    def _wants(self, subscriber: Subscriber, event_type: str) -> bool:
        return any(
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
        event_id = new_id()
        now = utcnow()
        result = await session.execute(
            insert(self.tables.event)
            .values(
                id=event_id,
                type=event_type,
                subject=subject,
                data=json.dumps(data, default=str, separators=(",", ":")),
                occurred_at=now,
            )
            .returning(self.tables.event.c.seq)
        )
        seq = result.scalar_one()
        rows = [
            {
                "event_seq": seq,
                "subscriber": s.name,
                "status": PENDING,
                "attempt_count": 0,
                "next_attempt_at": now,
            }
            for s in self.subscribers
            if self._wants(s, event_type)
        ]
        if rows:
            await session.execute(insert(self.tables.delivery), rows)
        self.wakeup.set()
        return event_id

    async def publish_many(
        self, session: AsyncSession, events: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> None:
        """Adds many (type, subject, data) events at once, in that order, with a few multi-row
        inserts rather than two statements each (an erasure can announce thousands)."""
        if not events:
            return
        now = utcnow()
        rows = [
            {
                "id": new_id(),
                "type": event_type,
                "subject": subject,
                "data": json.dumps(data, default=str, separators=(",", ":")),
                "occurred_at": now,
            }
            for event_type, subject, data in events
        ]
        event = self.tables.event
        result = await session.execute(
            insert(event).returning(event.c.seq, event.c.type, sort_by_parameter_order=True), rows
        )
        deliveries = [
            {
                "event_seq": seq,
                "subscriber": s.name,
                "status": PENDING,
                "attempt_count": 0,
                "next_attempt_at": now,
            }
            for seq, event_type in result.all()
            for s in self.subscribers
            if self._wants(s, event_type)
        ]
        if deliveries:
            await session.execute(insert(self.tables.delivery), deliveries)
        self.wakeup.set()


class Relay:
    """Delivers pending events; run one per process with ``run()`` as a background task."""

    def __init__(
        self,
        outbox: Outbox,
        database: Database,
        *,
        token: str,
        client: httpx.AsyncClient,
        interval: float = 1.0,
        batch_size: int = 100,
        timeout: float = 5.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.outbox = outbox
        self.database = database
        self.token = token
        self.client = client
        self.interval = interval
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.by_name = {s.name: s for s in outbox.subscribers}
        self.stopping = asyncio.Event()
        self.resting: dict[str, datetime] = {}
        digest = hashlib.blake2b(f"outbox:{outbox.source}".encode(), digest_size=8).digest()
        self.lock_key = int.from_bytes(digest, "big", signed=True)

    def backoff(self, attempt_count: int) -> float:
        base: float = min(self.max_backoff, 0.5 * 2 ** min(attempt_count, 20))
        return base * (0.75 + random.random() / 2)  # noqa: S311 - jitter, not security

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                sent = await self.deliver_once()
            except Exception:  # a relay must outlive any one failure
                log.exception("relay pass failed")
                sent = 0
            if sent:
                continue
            self.outbox.wakeup.clear()
            wake = asyncio.create_task(self.outbox.wakeup.wait())
            stop = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({wake, stop}, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()
            stop.cancel()

    async def deliver_once(self) -> int:
        """One pass: claim due deliveries, send them, record the outcome. Returns how many
        were delivered.

        On PostgreSQL the claimed rows stay locked (FOR UPDATE SKIP LOCKED) until their outcome
        is recorded, so replicas never send the same row at once. SQLite has a single writer,
        and a subscriber may be this very process (identity receives its own events): there no
        transaction stays open while sending, and each outcome is recorded in its own."""
        if self.database.is_postgres:
            async with self.database.sessionmaker() as session, session.begin():
                turn = await session.scalar(select(func.pg_try_advisory_xact_lock(self.lock_key)))
                if not turn:
                    return 0  # another replica is delivering this source's events
                rows = await self._claim(session, lock=True)
                return await self._deliver(rows, session)
        async with self.database.sessionmaker() as session:
            rows = await self._claim(session, lock=False)
        return await self._deliver(rows, None)

    async def _claim(self, session: AsyncSession, *, lock: bool) -> list[Any]:
        t = self.outbox.tables
        query = (
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
            )
            .join(t.event, t.event.c.seq == t.delivery.c.event_seq)
            .where(t.delivery.c.status == PENDING)
            .order_by(t.delivery.c.id)
            .limit(self.batch_size)
        )
        if lock:
            query = query.with_for_update(skip_locked=True, of=t.delivery)
        return list((await session.execute(query)).all())

    async def _deliver(self, rows: list[Any], session: AsyncSession | None) -> int:
        now = utcnow()
        delivered = 0
        batches: dict[str, list[Any]] = {}
        blocked: set[tuple[str, str]] = set()
        for row in rows:
            key = (row.subscriber, row.subject)
            if key in blocked:
                continue
            resting = self.resting.get(row.subscriber)
            if row.next_attempt_at > now or row.subscriber not in self.by_name or (resting and resting > now):
                blocked.add(key)
                continue
            batches.setdefault(row.subscriber, []).append(row)
        for name, batch in batches.items():
            error = await self._send(self.by_name[name], batch)
            if error is None:
                values: dict[str, Any] = {"status": DELIVERED, "delivered_at": utcnow(), "last_error": None}
                delivered += len(batch)
                self.resting.pop(name, None)
            else:
                attempts = batch[0].attempt_count + 1
                retry_at = utcnow() + timedelta(seconds=self.backoff(attempts))
                self.resting[name] = retry_at
                log.warning("delivery to %s failed (attempt %d): %s", name, attempts, error)
                values = {"attempt_count": attempts, "next_attempt_at": retry_at, "last_error": error[:300]}
            await self._record(session, [r.id for r in batch], values)
        return delivered

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


EventHandler = Callable[[AsyncSession, EventIn], Awaitable[None]]


def event_receiver(tables: OutboxTables, handlers: Mapping[str, EventHandler]) -> APIRouter:
    """``POST /internal/events``: applies each event once, in order, in its own transaction;
    events of types with no handler are acknowledged and ignored. A handler under ``"*"``
    sees every event, after the type's own handler."""

    def _service_token(request: Request) -> None:
        expected: str = request.app.state.settings.internal_token.get_secret_value()
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
            raise Unauthorized("A service token is required.")

    router = APIRouter(include_in_schema=False)

    @router.post("/internal/events", dependencies=[Depends(_service_token)])
    async def receive_events(batch: EventBatch, request: Request) -> dict[str, int]:
        database: Database = request.app.state.database
        applied = 0
        for event in batch.events:
            try:
                async with database.sessionmaker() as session, session.begin():
                    # Recording the event first claims it: a concurrent delivery of the same
                    # event waits on this row, then fails on its key instead of applying twice.
                    seen = await session.scalar(
                        select(tables.processed.c.id).where(tables.processed.c.id == event.id)
                    )
                    if seen is not None:
                        continue
                    await session.execute(insert(tables.processed).values(id=event.id, processed_at=utcnow()))
                    # A handler that has events of its own to tell publishes them in the same
                    # transaction (``handler_outbox``).
                    session.info["outbox"] = request.app.state.outbox
                    handler = handlers.get(event.type)
                    if handler is not None:
                        await handler(session, event)
                    every = handlers.get("*")
                    if every is not None:
                        await every(session, event)
                applied += handler is not None
            except IntegrityError:
                if not await _processed(database, tables, event.id):
                    raise
                # applied meanwhile by a concurrent delivery of the same event
        return {"received": len(batch.events), "applied": applied}

    return router


async def _processed(database: Database, tables: OutboxTables, event_id: uuid.UUID) -> bool:
    async with database.sessionmaker() as session:
        found = await session.scalar(select(tables.processed.c.id).where(tables.processed.c.id == event_id))
    return found is not None


def handler_outbox(session: AsyncSession) -> Outbox:
    """The receiving service's outbox, for an event handler running in ``session``."""
    outbox: Outbox = session.info["outbox"]
    return outbox


def _outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.outbox
    return outbox


OutboxDep = Annotated[Outbox, Depends(_outbox)]
