"""The sweeper (decision 0036): what media stops keeping, every ``sweep_interval_seconds``.

- Uploads never attached, ``unattached_hours`` after they were uploaded (a day by default),
  whatever their status: the uploader did not use them.
- Rejected uploads, a day after they were uploaded: the uploader has seen why.
- Stored bytes no media names (as its file, its preview or its bytes as received) and not
  touched for an hour: a deleted media's, wherever it was deleted (the uploader, an owner's
  release, an erasure, records' disposal, the sweeper itself), and whatever a crash left.

A key is deleted in one short transaction that first claims its ``Blob`` row with a
conditional update (still unnamed, still old): that takes the row's lock (PostgreSQL) or the
database's write lock (SQLite), so a worker about to store the same bytes again, which touches
the row first (``worker``), waits until the bytes and the row are gone and then stores them
anew. The bytes go before the row: a crash in between leaves a row to sweep again, never
bytes that nothing names.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import and_, delete, exists, or_, update
from sqlmodel import col, select

from kit.db import Database
from kit.housekeeping import Periodic
from kit.timeutil import utcnow
from services.media import library
from services.media.models import Blob, Media
from services.media.settings import MediaSettings
from services.media.storage import Storage

log = logging.getLogger(__name__)

REJECTED_KEPT = timedelta(days=1)
UNNAMED_KEPT = timedelta(hours=1)
BATCH = 500


def _named(key: Any) -> Any:
    return exists().where(
        or_(col(Media.file_key) == key, col(Media.preview_key) == key, col(Media.incoming_key) == key)
    )


async def sweep_media(database: Database, settings: MediaSettings) -> int:
    """Deletes the uploads due; returns how many."""
    now = utcnow()
    due = or_(
        and_(
            col(Media.owner_kind).is_(None),
            col(Media.created_at) < now - timedelta(hours=settings.unattached_hours),
        ),
        and_(col(Media.status) == "rejected", col(Media.created_at) < now - REJECTED_KEPT),
    )
    async with database.sessionmaker() as session, session.begin():
        return await library.forget(session, due)


async def sweep_blobs(database: Database, storage: Storage) -> int:
    """Deletes the stored keys no media names and nobody touched for an hour; returns how
    many."""
    removed = 0
    while True:
        cutoff = utcnow() - UNNAMED_KEPT
        unnamed = and_(col(Blob.touched_at) < cutoff, ~_named(col(Blob.key)))
        async with database.sessionmaker() as session:
            keys = list((await session.scalars(select(Blob.key).where(unnamed).limit(BATCH))).all())
        if not keys:
            return removed
        for key in keys:
            async with database.sessionmaker() as session, session.begin():
                claimed: Any = await session.execute(
                    update(Blob).where(col(Blob.key) == key, unnamed).values(size=col(Blob.size))
                )
                if claimed.rowcount != 1:
                    continue  # touched or named meanwhile
                await storage.delete(key)
                await session.execute(delete(Blob).where(col(Blob.key) == key))
            removed += 1
        if len(keys) < BATCH:
            return removed


async def sweep(app: FastAPI) -> dict[str, int]:
    """One pass of the sweeper over ``app``'s media; for the worker, tests and scripts."""
    database: Database = app.state.database
    storage: Storage = app.state.storage
    settings: MediaSettings = app.state.settings
    media = await sweep_media(database, settings)
    blobs = await sweep_blobs(database, storage)
    if media or blobs:
        log.info("swept", extra={"media": media, "stored_keys": blobs})
    return {"media": media, "stored_keys": blobs}


class Sweeper(Periodic):
    def __init__(self, app: FastAPI, interval: float) -> None:
        super().__init__(interval)
        self.app = app

    async def tick(self) -> dict[str, int]:
        return await sweep(self.app)


def worker(app: FastAPI) -> Sweeper:
    settings: MediaSettings = app.state.settings
    return Sweeper(app, settings.sweep_interval_seconds)
