"""Disposition: destroying what the retention schedule no longer keeps (decision 0033,
"Disposition").

A run reads the policies in force, and for each content class whose policy disposes selects,
``disposition_batch`` at a time, the items past their cut-off (their creation, or a post's last
activity, before ``now - keep_days``; a group's own override for its ``group_posts``) that no
active hold keeps (``holding.keeps``). Each batch is one short transaction: it deletes the items
and their versions from the records copy (a post takes its comments and reactions in the copy
with it, as feed destroys them with it) and publishes ``internal.records.dispose`` to the
owners, who destroy their rows when the event reaches them. ``edit_history`` destroys the
earlier versions of posts no hold covers: every version older than the cut-off and before the
post's current text (the latest version with a text), which stays, as does anything after it.
Media (decision 0036) go with what they hang from: destroying a post takes the files attached
to it and to its comments, destroying a comment its own files, in the same batch, out of the
copy and to media (``{"kind": "media", "ids": [...]}``, 1000 at most an event, as the owners'
other kinds), which destroys the bytes; a file a hold covers stays (``holding.keeps`` keeps
its post or comment anyway). A media whose post or comment is not in the copy (an event
delivered after its owner was disposed of, or an owner whose own write failed after media
attached the file) is disposed of under its class's rule, counted from its attachment. They
are counted as ``media`` on the certificate, their ids in its digest.

An operational class is disposed of by its owner on a ``{class, before}`` event, unless an
active hold's range reaches back past the cut-off; ``audit_log`` also deletes records' own
audit entries and certificates older than it.

Two runs never overlap: a run holds the ``disposition`` lease (``run_lock``), taken by a
conditional update and renewed by every batch; a second run is refused (409
``disposition-running``), and a run whose process died is taken over once its lease has run out
(its certificate is then ``aborted``). Each batch first renews the lease, which is also the
write that starts SQLite's transaction, then (PostgreSQL) takes ``holding.serialise``'s lock:
the batch selects and deletes with every hold committed before it in view, and a hold placed
meanwhile waits for the batch to end. The hot paths of feed, groups and identity are not touched
here: they destroy their rows in their own batches.

Each run ends with its certificate (``disposition``): the policies in force, the cut-offs,
what was destroyed per class, and a SHA-256 of the sorted ids destroyed, with an audit entry
(its officer, or none for the scheduled run). The ids are held in memory until the run ends,
as 16 bytes each (a run of a million items holds about 40 MB); ``uuid.bytes`` sort as the text
of the ids does, so the digest is the one of the sorted text.

An officer's run (``POST /api/v1/records/dispositions``) takes the lease and writes its
certificate in the request, then goes on in the background (``Runs``): a run of a million items
takes minutes, longer than any client waits. The answer is the ``running`` certificate; reading
it again shows the counts so far and, at the end, its status. A process stopped while its run goes
on leaves the lease to run out, and the next run marks the certificate ``aborted``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import ColumnElement, Table, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.db import Database, upsert
from kit.errors import Conflict, NotFound
from kit.housekeeping import Periodic
from kit.ids import new_id
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.records import audit, holding
from services.records.classes import OPERATIONAL_CLASSES, PROFESSIONAL_POST_CLASSES
from services.records.models import (
    AuditEntry,
    Disposition,
    Item,
    ItemVersion,
    MediaRecord,
    MediaVersion,
    RunLock,
)
from services.records.officers import Officer
from services.records.policies import PolicyInForce, RuleInForce, in_force
from services.records.settings import RecordsSettings

log = logging.getLogger("services.records.disposition")

EVENT = "internal.records.dispose"
RUN_LOCK = "disposition"
LEASE = timedelta(minutes=5)
MAX_IDS = 1000  # per event, as the owners accept them
RUNNING, FINISHED, FAILED, ABORTED = "running", "finished", "failed", "aborted"

ITEM: Table = Item.__table__  # type: ignore[attr-defined]
VERSION: Table = ItemVersion.__table__  # type: ignore[attr-defined]
MEDIA: Table = MediaRecord.__table__  # type: ignore[attr-defined]
MEDIA_VERSION: Table = MediaVersion.__table__  # type: ignore[attr-defined]
MEDIA_COUNT = "media"  # the certificate's count of destroyed media


class LeaseLost(Exception):
    """Another run took the lease over: this one stops where it is."""


@dataclass
class Run:
    """One run as it goes: its lease, and what it has destroyed so far."""

    id: uuid.UUID
    database: Database
    outbox: Outbox
    batch: int
    counts: Counter[str] = field(default_factory=Counter)
    destroyed: list[bytes] = field(default_factory=list)
    held: list[str] = field(default_factory=list)

    def tally(self, rows: Sequence[Any]) -> None:
        """Counts destroyed rows (``id``, ``klass``) under their own class."""
        for row in rows:
            self.counts[row.klass] += 1
            self.destroyed.append(_as_uuid(row.id).bytes)

    def digest(self) -> str:
        """SHA-256 of the destroyed ids' text, sorted, one a line (no newline after the last)."""
        digest = hashlib.sha256()
        for n, raw in enumerate(sorted(self.destroyed)):
            digest.update((b"\n" if n else b"") + str(uuid.UUID(bytes=raw)).encode())
        return digest.hexdigest()


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


@dataclass(frozen=True, slots=True)
class Due:
    """Items of one kind that a rule disposes of: ``condition`` over ``ITEM``."""

    kind: str
    condition: ColumnElement[bool]


class Disposer(Periodic):
    """The scheduled run (``ServiceSpec.workers``), every ``disposition_interval_seconds``."""

    def __init__(self, database: Database, outbox: Outbox, settings: RecordsSettings) -> None:
        super().__init__(settings.disposition_interval_seconds)
        self.database = database
        self.outbox = outbox
        self.settings = settings

    async def tick(self) -> Disposition | None:
        try:
            return await run(self.database, self.outbox, self.settings, utcnow())
        except Conflict:  # another replica's run (or an officer's) is under way
            return None


def worker(app: FastAPI) -> Disposer:
    return Disposer(app.state.database, app.state.outbox, app.state.settings)


async def run(
    database: Database,
    outbox: Outbox,
    settings: RecordsSettings,
    now: datetime,
    *,
    officer_id: uuid.UUID | None = None,
) -> Disposition:
    """One whole run at ``now`` (the time cut-offs are counted back from); returns its
    certificate. 409 ``disposition-running`` while another run holds the lease."""
    started = await _start(database, now, officer_id)
    return await _proceed(started, database, outbox, settings, now, officer_id)


async def _proceed(
    started: _Started,
    database: Database,
    outbox: Outbox,
    settings: RecordsSettings,
    now: datetime,
    officer_id: uuid.UUID | None,
) -> Disposition:
    current = Run(started.run_id, database, outbox, settings.disposition_batch)
    try:
        for due in _content(started.rules, now):
            await _dispose(current, due)
        for condition in _orphan_media(started.rules, now):
            await _dispose_orphans(current, condition)
        edit_cutoff = started.rules["edit_history"].cutoff(now)
        if edit_cutoff is not None:
            await _dispose_revisions(current, edit_cutoff)
        for klass in OPERATIONAL_CLASSES:
            cutoff = started.rules[klass].cutoff(now)
            if cutoff is not None:
                await _dispose_operational(current, klass, cutoff)
    except Exception:
        await _fail(current, officer_id)
        raise
    return await _end(current, FINISHED, officer_id)


async def _fail(run: Run, officer_id: uuid.UUID | None) -> None:
    """Records a failed run, if the database lets it; else the next run marks it aborted."""
    try:
        await _end(run, FAILED, officer_id)
    except Exception:
        log.exception("disposition %s failed and could not be recorded", run.id)


class Runs:
    """Officers' runs going on in the background of this process (``app.state.disposition_runs``)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Disposition]] = set()

    def add(self, task: asyncio.Task[Disposition]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Disposition]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("disposition failed: %s", type(task.exception()).__name__)

    async def join(self) -> None:
        """Waits for every run under way (tests, and a clean stop)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def on_startup(app: FastAPI) -> None:
    app.state.disposition_runs = Runs()


async def start_now(
    session: AsyncSession,
    database: Database,
    outbox: Outbox,
    settings: RecordsSettings,
    officer: Officer,
    runs: Runs,
) -> Disposition:
    """An officer's run, now: takes the lease and writes the ``running`` certificate, then goes
    on in the background; the request's own session holds nothing while it runs."""
    await session.rollback()
    now = utcnow()
    started = await _start(database, now, officer.persona_id)
    runs.add(asyncio.create_task(_proceed(started, database, outbox, settings, now, officer.persona_id)))
    async with database.sessionmaker() as reading:
        certificate = await reading.get(Disposition, started.run_id)
    assert certificate is not None
    return certificate


@dataclass(frozen=True, slots=True)
class _Started:
    run_id: uuid.UUID
    rules: dict[str, PolicyInForce]


async def _start(database: Database, now: datetime, officer_id: uuid.UUID | None) -> _Started:
    """Takes the lease and writes the certificate as ``running``, with the policies and
    cut-offs it runs under; marks the certificates of runs whose lease ran out ``aborted``."""
    run_id = new_id()
    async with database.sessionmaker() as session:
        await upsert(
            session, RunLock, {"name": RUN_LOCK, "holder": None, "until": None}, ["name"], update=False
        )
        clock = utcnow()
        taken: Any = await session.execute(
            update(RunLock)
            .where(
                col(RunLock.name) == RUN_LOCK,
                or_(col(RunLock.holder).is_(None), col(RunLock.until) < clock),
            )
            .values(holder=run_id, until=clock + LEASE)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            await session.rollback()
            raise Conflict(
                "A disposition is running; try again once it has finished.", slug="disposition-running"
            )
        await session.execute(
            update(Disposition)
            .where(col(Disposition.status) == RUNNING)
            .values(status=ABORTED)
            .execution_options(synchronize_session=False)
        )
        version, rules = await in_force(session)
        session.add(
            Disposition(
                id=run_id,
                started_at=now,
                policies={"version": version, **{k: _policy_record(p) for k, p in rules.items()}},
                cutoffs=_cutoffs(rules, now),
                started_by=officer_id,
            )
        )
        await session.commit()
    return _Started(run_id, rules)


def _policy_record(policy: PolicyInForce) -> dict[str, Any]:
    return {**policy.public(), "overrides": {str(g): o.public() for g, o in policy.overrides.items()}}


def _cutoffs(rules: dict[str, PolicyInForce], now: datetime) -> dict[str, str]:
    """Every cut-off the run applies: ``class``, and ``group_posts:<group id>`` for overrides."""
    found: dict[str, str] = {}
    for klass, policy in rules.items():
        cutoff = policy.cutoff(now)
        if cutoff is not None:
            found[klass] = cutoff.isoformat()
        for group_id, override in policy.overrides.items():
            cutoff = override.cutoff(now)
            if cutoff is not None:
                found[f"{klass}:{group_id}"] = cutoff.isoformat()
    return found


def _content(rules: dict[str, PolicyInForce], now: datetime) -> list[Due]:
    """What each content class's policy disposes of, posts first (with what hangs from them),
    then comments and reactions left."""
    found = [
        *_posts(rules["organisation_posts"], now),
        *_posts(rules["followers_posts"], now),
        *_group_posts(rules["group_posts"], now),
        *_posts(rules["personal_content"], now),
    ]
    for klass, kind in (("comments", "comment"), ("reactions", "reaction")):
        found += _posts(rules[klass], now, kind=kind)
    personal = rules["personal_content"]
    found += [*_posts(personal, now, kind="comment"), *_posts(personal, now, kind="reaction")]
    return found


def _posts(policy: PolicyInForce, now: datetime, *, kind: str = "post", also: Any = None) -> list[Due]:
    """The items of ``kind`` in the policy's class past its cut-off."""
    condition = _past(policy.klass, policy, now)
    if condition is None:
        return []
    conditions = [ITEM.c.kind == kind, condition]
    if also is not None:
        conditions.append(also)
    return [Due(kind, and_(*conditions))]


def _group_posts(policy: PolicyInForce, now: datetime) -> list[Due]:
    """``group_posts``: the class's rule for groups without an override, each group's own
    rule for the others."""
    overridden = list(policy.overrides)
    found = _posts(policy, now, also=ITEM.c.group_id.not_in(overridden) if overridden else None)
    for group_id, override in policy.overrides.items():
        condition = _past(policy.klass, override, now)
        if condition is not None:
            found.append(Due("post", and_(ITEM.c.kind == "post", ITEM.c.group_id == group_id, condition)))
    return found


def _past(klass: str, rule: RuleInForce, now: datetime) -> ColumnElement[bool] | None:
    cutoff = rule.cutoff(now)
    if cutoff is None:
        return None
    counted = ITEM.c.last_activity_at if rule.counted_from == "last_activity" else ITEM.c.created_at
    return and_(ITEM.c.klass == klass, counted < cutoff)


async def _dispose(run: Run, due: Due) -> None:
    """Every item ``due`` selects that no hold keeps, a batch per transaction, in id order."""
    after: uuid.UUID | None = None
    while True:
        async with run.database.sessionmaker() as session:
            await _begin_batch(session, run)
            query = (
                select(ITEM.c.id)
                .where(due.condition, ~holding.keeps(ITEM))
                .order_by(ITEM.c.id)
                .limit(run.batch)
            )
            if after is not None:
                query = query.where(ITEM.c.id > after)
            ids = list((await session.scalars(query)).all())
            if ids:
                await _destroy(session, run, due.kind, ids)
            await _progress(session, run)
            await session.commit()
        if len(ids) < run.batch:
            return
        after = ids[-1]


async def _destroy(session: AsyncSession, run: Run, kind: str, ids: list[uuid.UUID]) -> None:
    """Deletes the items (a post with its comments and reactions) and their versions from the
    copy, and tells the owners, in the caller's transaction."""
    events: list[dict[str, Any]]
    if kind == "reaction":
        rows = (
            await session.execute(
                select(ITEM.c.post_id, ITEM.c.author_id, ITEM.c.reaction).where(ITEM.c.id.in_(ids))
            )
        ).all()
        reactions = [
            {"post_id": str(r.post_id), "persona_id": str(r.author_id), "kind": r.reaction} for r in rows
        ]
        events = [{"kind": "reaction", "reactions": chunk} for chunk in _chunks(reactions)]
    else:
        events = [{"kind": kind, "ids": [str(i) for i in chunk]} for chunk in _chunks(ids)]
    if kind in ("post", "comment"):
        # the files first: whether a hold covers one reads its post or comment
        owner = MEDIA.c.post_id if kind == "post" else MEDIA.c.comment_id
        await _destroy_media(session, run, and_(owner.in_(ids), ~holding.media_covered(MEDIA)))
    hanging = ITEM.c.post_id.in_(ids) if kind == "post" else None
    gone = ITEM.c.id.in_(ids) if hanging is None else or_(ITEM.c.id.in_(ids), hanging)
    await session.execute(delete(VERSION).where(VERSION.c.item_id.in_(select(ITEM.c.id).where(gone))))
    if hanging is not None:
        run.tally(
            (await session.execute(delete(ITEM).where(hanging).returning(ITEM.c.id, ITEM.c.klass))).all()
        )
    run.tally(
        (
            await session.execute(delete(ITEM).where(ITEM.c.id.in_(ids)).returning(ITEM.c.id, ITEM.c.klass))
        ).all()
    )
    await run.outbox.publish_many(session, [(EVENT, str(run.id), data) for data in events])


async def _destroy_media(session: AsyncSession, run: Run, condition: ColumnElement[bool]) -> None:
    """Deletes the media ``condition`` selects and their versions from the copy, and tells
    media to destroy them, in the caller's transaction."""
    ids = list((await session.scalars(select(MEDIA.c.id).where(condition).order_by(MEDIA.c.id))).all())
    if not ids:
        return
    for chunk in _chunks(ids):
        await session.execute(delete(MEDIA_VERSION).where(MEDIA_VERSION.c.media_id.in_(chunk)))
        gone = (await session.execute(delete(MEDIA).where(MEDIA.c.id.in_(chunk)).returning(MEDIA.c.id))).all()
        run.counts[MEDIA_COUNT] += len(gone)
        run.destroyed.extend(_as_uuid(r.id).bytes for r in gone)
        await run.outbox.publish(
            session, EVENT, str(run.id), {"kind": "media", "ids": [str(i) for i in chunk]}
        )


def _orphan_media(rules: dict[str, PolicyInForce], now: datetime) -> list[ColumnElement[bool]]:
    """The media whose post or comment is not in the copy, past their class's cut-off
    (a group's override for its ``group_posts``), counted from their attachment."""
    found: list[ColumnElement[bool]] = []

    def past(klass: str, rule: RuleInForce, *also: ColumnElement[bool]) -> None:
        cutoff = rule.cutoff(now)
        if cutoff is not None:
            found.append(and_(MEDIA.c.klass == klass, MEDIA.c.created_at < cutoff, *also))

    for klass in ("organisation_posts", "followers_posts", "personal_content"):
        past(klass, rules[klass])
    groups = rules["group_posts"]
    overridden = list(groups.overrides)
    past("group_posts", groups, *([MEDIA.c.group_id.not_in(overridden)] if overridden else []))
    for group_id, override in groups.overrides.items():
        past("group_posts", override, MEDIA.c.group_id == group_id)
    owner = ITEM.alias("media_owner")
    orphan = ~exists().where(owner.c.id == MEDIA.c.owner_id).correlate_except(owner)
    return [and_(condition, orphan) for condition in found]


async def _dispose_orphans(run: Run, condition: ColumnElement[bool]) -> None:
    """Every media ``condition`` selects that no hold covers, a batch per transaction."""
    while True:
        async with run.database.sessionmaker() as session:
            await _begin_batch(session, run)
            query = (
                select(MEDIA.c.id)
                .where(condition, ~holding.media_covered(MEDIA))
                .order_by(MEDIA.c.id)
                .limit(run.batch)
            )
            ids = list((await session.scalars(query)).all())
            if ids:
                await _destroy_media(session, run, MEDIA.c.id.in_(ids))
            await _progress(session, run)
            await session.commit()
        if len(ids) < run.batch:
            return


async def _dispose_revisions(run: Run, cutoff: datetime) -> None:
    """``edit_history``: the earlier versions of professional posts no hold covers."""
    versions = VERSION.alias("earlier")
    posts = and_(
        ITEM.c.kind == "post",
        ITEM.c.klass.in_(PROFESSIONAL_POST_CLASSES),
        exists().where(versions.c.item_id == ITEM.c.id, _earlier(versions, cutoff)),
        ~holding.covered(ITEM),
    )
    after: uuid.UUID | None = None
    while True:
        async with run.database.sessionmaker() as session:
            await _begin_batch(session, run)
            query = select(ITEM.c.id).where(posts).order_by(ITEM.c.id).limit(run.batch)
            if after is not None:
                query = query.where(ITEM.c.id > after)
            ids = list((await session.scalars(query)).all())
            if ids:
                gone = (
                    await session.execute(
                        delete(VERSION)
                        .where(VERSION.c.item_id.in_(ids), _earlier(VERSION, cutoff))
                        .returning(VERSION.c.id)
                    )
                ).all()
                run.counts["edit_history"] += len(gone)
                run.destroyed.extend(_as_uuid(r.id).bytes for r in gone)
                events = [
                    (
                        EVENT,
                        str(run.id),
                        {
                            "kind": "revisions",
                            "post_ids": [str(i) for i in chunk],
                            "before": cutoff.isoformat(),
                        },
                    )
                    for chunk in _chunks(ids)
                ]
                await run.outbox.publish_many(session, events)
            await _progress(session, run)
            await session.commit()
        if len(ids) < run.batch:
            return
        after = ids[-1]


def _earlier(versions: Any, cutoff: datetime) -> ColumnElement[bool]:
    """A version (of ``versions``, the table or an alias) older than ``cutoff`` and before its
    item's current text."""
    current = VERSION.alias("current")
    text_version = (
        select(func.max(current.c.version))
        .where(current.c.item_id == versions.c.item_id, current.c.body.is_not(None))
        .scalar_subquery()
    )
    return and_(versions.c.at < cutoff, versions.c.version < text_version)


async def _dispose_operational(run: Run, klass: str, cutoff: datetime) -> None:
    """Asks the owner to delete the class's rows older than ``cutoff``, unless an active hold
    reaches back past it (then the class is ``held`` on the certificate)."""
    async with run.database.sessionmaker() as session:
        await _begin_batch(session, run)
        if await holding.reaches_before(session, klass, cutoff):
            run.held.append(klass)
            await session.commit()
            return
        await run.outbox.publish(session, EVENT, str(run.id), {"class": klass, "before": cutoff.isoformat()})
        await session.commit()
    if klass == "audit_log":
        run.counts[klass] += await _delete_own_log(run, cutoff)


async def _delete_own_log(run: Run, cutoff: datetime) -> int:
    """Records' own audit entries and finished certificates older than ``cutoff``."""
    deleted = 0
    entries: Table = AuditEntry.__table__  # type: ignore[attr-defined]
    certificates: Table = Disposition.__table__  # type: ignore[attr-defined]
    for table, column, also in (
        (entries, entries.c.at, None),
        (certificates, certificates.c.started_at, certificates.c.status != RUNNING),
    ):
        conditions = [column < cutoff, *([also] if also is not None else [])]
        while True:
            async with run.database.sessionmaker() as session:
                await _begin_batch(session, run)
                due = select(table.c.id).where(*conditions).limit(run.batch)
                result: Any = await session.execute(delete(table).where(table.c.id.in_(due)))
                await session.commit()
            count = int(result.rowcount or 0)
            deleted += count
            if count < run.batch:
                break
    return deleted


async def _begin_batch(session: AsyncSession, run: Run) -> None:
    """Renews the run's lease (the write that starts SQLite's transaction) and takes the lock
    that orders the batch with holds' placements; ``LeaseLost`` when another run has the lease."""
    clock = utcnow()
    renewed: Any = await session.execute(
        update(RunLock)
        .where(col(RunLock.name) == RUN_LOCK, col(RunLock.holder) == run.id)
        .values(until=clock + LEASE)
        .execution_options(synchronize_session=False)
    )
    if renewed.rowcount != 1:
        raise LeaseLost(f"disposition {run.id} lost its lease")
    await holding.serialise(session)


async def _progress(session: AsyncSession, run: Run) -> None:
    """The counts so far on the certificate, in the batch's transaction: a run that dies leaves
    what it did on record."""
    await session.execute(
        update(Disposition)
        .where(col(Disposition.id) == run.id)
        .values(counts=dict(run.counts))
        .execution_options(synchronize_session=False)
    )


async def _end(run: Run, status: str, officer_id: uuid.UUID | None) -> Disposition:
    """Completes the certificate, writes the run's audit entry and gives the lease back."""
    async with run.database.sessionmaker() as session:
        certificate = await session.get(Disposition, run.id)
        if certificate is None:  # deleted by a concurrent takeover's audit_log disposal
            raise NotFound("The disposition's certificate is gone.")
        certificate.status = status
        certificate.finished_at = utcnow()
        certificate.counts = dict(run.counts)
        certificate.held = list(run.held)
        certificate.digest = run.digest()
        audit.record(
            session,
            officer_id,
            "disposition.run",
            disposition_id=str(run.id),
            status=status,
            counts=dict(run.counts),
        )
        await session.execute(
            update(RunLock)
            .where(col(RunLock.name) == RUN_LOCK, col(RunLock.holder) == run.id)
            .values(holder=None, until=None)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    if status != FINISHED:
        log.warning("disposition %s %s after %d items", run.id, status, len(run.destroyed))
    return certificate


def _chunks(values: Sequence[Any]) -> list[list[Any]]:
    return [list(values[i : i + MAX_IDS]) for i in range(0, len(values), MAX_IDS)]


async def find(
    session: AsyncSession, officer: Officer, *, before: uuid.UUID | None, limit: int
) -> list[Disposition]:
    """Up to ``limit + 1`` certificates, newest first; the read is audited."""
    query = select(Disposition).order_by(col(Disposition.id).desc()).limit(limit + 1)
    if before is not None:
        query = query.where(col(Disposition.id) < before)
    rows = list((await session.scalars(query)).all())
    audit.record(session, officer.persona_id, "dispositions.listed")
    await session.commit()
    return rows


async def read(session: AsyncSession, officer: Officer, disposition_id: uuid.UUID) -> Disposition:
    certificate = await session.get(Disposition, disposition_id)
    if certificate is None:
        raise NotFound("No such disposition.")
    audit.record(session, officer.persona_id, "disposition.read", disposition_id=str(certificate.id))
    await session.commit()
    return certificate
