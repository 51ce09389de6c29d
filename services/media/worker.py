"""The processing worker (decision 0036): takes uploads in ``processing``, one at a time, off
the request path, and makes each ``ready`` or ``rejected``.

One job:

1. **Claim** a media whose lease has ended (or that never had one) with a compare-and-set
   update: the lease moves ``lease_seconds`` ahead and ``attempts`` grows by one only if the
   row is still claimable, so two workers (two replicas) never take the same media, and a
   worker that crashed mid-file leaves the media to be taken again once its lease ends. After
   ``max_attempts`` the media is rejected ("could not be processed") instead.
2. **Fetch** its bytes as received (``incoming/<id>``) into a folder of the spool.
3. **Scan** them with ClamAV when ``MEDIA_CLAMD_ADDRESS`` is set: malware rejects the media;
   a daemon that does not answer leaves it in ``processing`` to be tried again after
   ``scan_retry_seconds``, and that try does not count among the attempts (an outage of the
   daemon must not reject uploads).
4. **Process** them (``processing.process``, in a thread: CPU-bound Pillow work).
5. **Store** the file and its preview under the SHA-256 of their bytes: each key's ``Blob``
   row is touched (committed) before its bytes are put, so the sweeper cannot take them, and
   the put is whole or nothing (``storage``).
6. **Finish** in one transaction: the media becomes ``ready`` with its file, only if the
   worker still holds it (its status and attempt count unchanged: a worker whose lease ran out
   and was overtaken gives up). Then the bytes as received are deleted.

A rejected media's bytes as received are deleted too; what was stored for it is left to the
sweeper. Any other failure leaves the media ``processing`` with its lease, to be retried when
the lease ends; the spool folder goes in every case.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import and_, or_, update
from sqlmodel import col, select

from kit.db import Database
from kit.housekeeping import Periodic
from kit.timeutil import utcnow
from services.media import processing, scanning
from services.media.models import Media
from services.media.settings import MediaSettings
from services.media.spool import workdir
from services.media.storage import Storage
from services.media.uploading import forget_key, touch

log = logging.getLogger(__name__)

GAVE_UP = "The file could not be processed."
CANDIDATES = 10


@dataclass(frozen=True)
class Job:
    """A claimed media: its id, the attempt this is, and what the worker needs of it."""

    id: uuid.UUID
    attempts: int
    incoming_key: str | None
    declared_type: str


def _claimable(now: Any) -> Any:
    return and_(
        col(Media.status) == "processing",
        or_(col(Media.lease_until).is_(None), col(Media.lease_until) < now),
    )


def _held(job: Job) -> Any:
    """The condition under which the worker still holds the media it claimed."""
    return and_(
        col(Media.id) == job.id, col(Media.status) == "processing", col(Media.attempts) == job.attempts
    )


async def claim(database: Database, settings: MediaSettings) -> Job | None:
    """Takes one claimable media (oldest first), or None."""
    now = utcnow()
    async with database.sessionmaker() as session:
        candidates = list(
            (
                await session.scalars(
                    select(Media.id).where(_claimable(now)).order_by(col(Media.created_at)).limit(CANDIDATES)
                )
            ).all()
        )
        await session.rollback()
        for media_id in candidates:
            result: Any = await session.execute(
                update(Media)
                .where(col(Media.id) == media_id, _claimable(now))
                .values(
                    attempts=col(Media.attempts) + 1,
                    lease_until=now + timedelta(seconds=settings.lease_seconds),
                )
                .returning(col(Media.attempts), col(Media.incoming_key), col(Media.content_type))
            )
            row = result.first()
            await session.commit()
            if row is not None:
                return Job(media_id, row.attempts, row.incoming_key, row.content_type)
    return None


async def _reject(database: Database, storage: Storage, job: Job, reason: str) -> None:
    """The media is refused for good; its bytes as received are deleted."""
    async with database.sessionmaker() as session, session.begin():
        result: Any = await session.execute(
            update(Media)
            .where(_held(job))
            .values(
                status="rejected",
                reason=reason[:200],
                lease_until=None,
                incoming_key=None,
                updated_at=utcnow(),
            )
        )
        rejected = result.rowcount == 1
    if rejected and job.incoming_key is not None:
        await forget_key(database, storage, job.incoming_key)


async def _retry_later(database: Database, job: Job, seconds: float) -> None:
    """The attempt did not count (the scanner was away): the media is tried again later."""
    async with database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Media)
            .where(_held(job))
            .values(attempts=col(Media.attempts) - 1, lease_until=utcnow() + timedelta(seconds=seconds))
        )


def _digest(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


async def _store(database: Database, storage: Storage, path: Path, content_type: str) -> tuple[str, int]:
    """Stores a file under the SHA-256 of its bytes (once: a key already stored is the same
    bytes); returns the key and the size."""
    key, size = await asyncio.to_thread(_digest, path)
    async with database.sessionmaker() as session, session.begin():
        await touch(session, key, size, content_type)
    if not await storage.exists(key):
        await storage.put(key, path, content_type)
    return key, size


async def _finish(database: Database, job: Job, done: processing.Processed, stored: dict[str, Any]) -> bool:
    """Makes the media ready, if the worker still holds it; its stored files' rows are
    touched again with it."""
    now = utcnow()
    async with database.sessionmaker() as session, session.begin():
        result: Any = await session.execute(
            update(Media)
            .where(_held(job))
            .values(
                status="ready",
                reason=None,
                media_type=done.media_type,
                content_type=done.content_type,
                width=done.width,
                height=done.height,
                preview_content_type=done.preview_content_type if done.preview else None,
                preview_width=done.preview_width if done.preview else None,
                preview_height=done.preview_height if done.preview else None,
                lease_until=None,
                incoming_key=None,
                updated_at=now,
                **stored,
            )
        )
        if result.rowcount != 1:
            return False
        keys = [k for k in (stored["file_key"], stored.get("preview_key")) if k]
        for key in keys:
            size = stored["file_size"] if key == stored["file_key"] else stored["preview_size"]
            content_type = done.content_type if key == stored["file_key"] else done.preview_content_type
            await touch(session, key, size, content_type or "application/octet-stream")
    return True


async def run_job(database: Database, storage: Storage, settings: MediaSettings, job: Job) -> None:
    """Scans, processes and stores one claimed media (see the module's docstring)."""
    if job.attempts > settings.max_attempts:
        await _reject(database, storage, job, GAVE_UP)
        return
    if job.incoming_key is None:
        await _reject(database, storage, job, GAVE_UP)
        return
    with workdir(settings, "job-") as folder:
        source = folder / "incoming"
        try:
            await storage.fetch(job.incoming_key, source)
        except KeyError:
            await _reject(database, storage, job, GAVE_UP)
            return
        if settings.clamd_address:
            try:
                await scanning.scan(source, settings.clamd_address, settings.clamd_timeout_seconds)
            except scanning.ScanUnavailable as exc:
                log.warning("the malware scanner is unavailable: %s", exc)
                await _retry_later(database, job, settings.scan_retry_seconds)
                return
            except processing.Rejected as exc:
                await _reject(database, storage, job, exc.reason)
                return
        try:
            done = await asyncio.to_thread(
                processing.process,
                source,
                folder,
                allowed=settings.allowed_types,
                max_pixels=settings.max_pixels,
                preview_pixels=settings.preview_pixels,
                declared_type=job.declared_type,
            )
        except processing.Rejected as exc:
            await _reject(database, storage, job, exc.reason)
            return
        file_key, file_size = await _store(database, storage, done.path, done.content_type)
        stored: dict[str, Any] = {"file_key": file_key, "file_size": file_size}
        if done.preview is not None:
            preview_type = done.preview_content_type or "application/octet-stream"
            preview_key, preview_size = await _store(database, storage, done.preview, preview_type)
            stored.update(preview_key=preview_key, preview_size=preview_size)
        if not await _finish(database, job, done, stored):
            log.info("media %s was taken over or deleted while it was processed", job.id)
            return
    await forget_key(database, storage, job.incoming_key)


async def process_once(app: FastAPI) -> int:
    """Claims and runs one job of ``app``'s media; returns how many it took (0 or 1). A job
    that fails is logged and left to its lease. For the worker, tests and scripts."""
    database: Database = app.state.database
    storage: Storage = app.state.storage
    settings: MediaSettings = app.state.settings
    job = await claim(database, settings)
    if job is None:
        return 0
    try:
        await run_job(database, storage, settings, job)
    except Exception:
        log.exception("processing media %s failed; it is tried again when its lease ends", job.id)
    return 1


class Processor(Periodic):
    """Runs jobs until none is left, every ``worker_poll_seconds``."""

    def __init__(self, app: FastAPI, interval: float) -> None:
        super().__init__(interval)
        self.app = app

    async def tick(self) -> int:
        done = 0
        while not self.stopping.is_set() and await process_once(self.app):
            done += 1
        return done


def worker(app: FastAPI) -> Processor:
    settings: MediaSettings = app.state.settings
    return Processor(app, settings.worker_poll_seconds)
