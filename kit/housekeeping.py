"""Retention: what each service stops keeping, and the worker that deletes it.

Without it several tables only grow: the outbox's delivered events, the ids of events already
applied, stored ``Idempotency-Key`` answers, logs and histories. A ``Retention`` names a table,
the timestamp column that ages its rows and how long they are kept (plus, optionally, a
condition a row must also meet to go); the ``Housekeeper`` deletes what is due every
``interval`` seconds, ``batch`` rows per short transaction so that it never holds locks for
long. Each service lists its rules (``ServiceSpec.retention``); every service also gets
``outbox_retention``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Table, delete, exists, select, tuple_

from kit.db import Database
from kit.outbox import DELIVERED, OutboxTables
from kit.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    """Rows of ``table`` whose ``column`` is older than ``keep`` (and that meet ``condition``,
    a SQL expression on the table, when given) are deleted."""

    name: str
    table: Table
    column: str
    keep: timedelta
    condition: Any = None


def outbox_retention(tables: OutboxTables, *, events: timedelta, processed: timedelta) -> list[Retention]:
    """Events every subscriber has received (their delivery rows go with them), and the ids of
    events this service applied or dead-lettered, with the dead letters themselves: a
    redelivery older than ``processed`` is no longer expected (relays retry for about a day,
    not weeks; handlers are idempotent besides)."""
    undelivered = exists().where(
        tables.delivery.c.event_seq == tables.event.c.seq, tables.delivery.c.status != DELIVERED
    )
    return [
        Retention("outbox events", tables.event, "occurred_at", events, condition=~undelivered),
        Retention("processed event ids", tables.processed, "processed_at", processed),
        Retention("dead-lettered events", tables.dead_letter, "received_at", processed),
    ]


class Periodic:
    """A worker (``ServiceSpec.workers``) that calls ``tick`` every ``interval`` seconds until
    ``stopping`` is set; a failed tick is logged and tried again at the next interval."""

    interval: float

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.stopping = asyncio.Event()

    async def tick(self) -> object:
        raise NotImplementedError

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.tick()
            except Exception:  # retried at the next interval
                log.exception("%s failed", type(self).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.interval)


class Housekeeper(Periodic):
    """Applies every rule each ``interval`` seconds."""

    def __init__(
        self, database: Database, rules: Sequence[Retention], *, interval: float = 600, batch: int = 1000
    ) -> None:
        super().__init__(interval)
        self.database = database
        self.rules = list(rules)
        self.batch = batch

    async def tick(self) -> dict[str, int]:
        return await self.sweep()

    async def sweep(self) -> dict[str, int]:
        """Deletes everything due now; returns how many rows each rule removed."""
        removed: dict[str, int] = {}
        for rule in self.rules:
            removed[rule.name] = 0
            try:
                while not self.stopping.is_set():
                    count = await self._delete_batch(rule)
                    removed[rule.name] += count
                    if count < self.batch:
                        break
            except Exception:  # one failing rule does not keep the others from running
                log.exception("housekeeping failed", extra={"rule": rule.name})
        if any(removed.values()):
            log.info("housekeeping", extra={"removed": removed})
        return removed

    async def _delete_batch(self, rule: Retention) -> int:
        table = rule.table
        keys = list(table.primary_key.columns)
        conditions = [table.c[rule.column] < utcnow() - rule.keep]
        if rule.condition is not None:
            conditions.append(rule.condition)
        due = select(*keys).where(*conditions).limit(self.batch)
        target = keys[0].in_(due) if len(keys) == 1 else tuple_(*keys).in_(due)
        # The conditions again on the rows deleted: a row changed since the batch was chosen
        # (a webhook delivery sent back to pending) is then left alone.
        async with self.database.sessionmaker() as session, session.begin():
            result: Any = await session.execute(delete(table).where(target, *conditions))
        return int(result.rowcount or 0)
