"""Exports (decision 0033, "Exports"): the jobs, their lease and their links.

An officer asks for a matter's export; a persona asks for its own (``/api/v1/me/export``).
Either is an ``export`` row, ``queued``, answered 202 at once: the scope is checked and its
custodians resolved by identity (who audits it) when it is asked for, and ``as_of``, the
snapshot's instant, is that moment. One matter, and one owner, has at most one export queued or
running (409 ``export-running``); the database's partial unique indexes decide between two
requests made at once.

**The worker.** ``Exporter`` takes one job at a time: a queued one, or a running one whose lease
ran out (its process was killed), by a conditional update that only one worker can win. It
holds the job under a lease it renews as it writes; ``attempts`` is its fencing token, so a
worker that lost the lease (it stalled past it and another took the job) stops without
touching the files. The package is written to ``<id>.zip.part``, flushed to disk, and renamed
``<id>.zip`` only once the manifest, written last, is in it: a file named ``.zip`` is always
whole. A job that fails is ``failed`` with its reason (and no file); one started three times
stays failed. Packages older than ``export_days`` are deleted and their export ``expired``.
Media's files are fetched from media as the package is written (``media``); one media cannot
give is listed as missing in the package's manifest and counted on the export
(``media_missing``), and the export goes on.

**Links.** A ready export's answer carries a download link valid ``link_minutes``, signed with
an HMAC-SHA256 (keyed from the internal secret, for this purpose alone) over the export's id and
the link's expiry: it cannot be moved to another export nor lengthened. The package route
wants the caller's token as well: 403 ``bad-signature`` for a link that was not made here,
410 ``link-expired`` past its time, 410 ``export-expired`` once the package is deleted. Each
download is recorded (``download``): the chain of custody the export's answer lists.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.db import Database
from kit.errors import APIError, Conflict, Forbidden, NotFound, Unprocessable
from kit.housekeeping import Periodic
from kit.timeutil import utcnow
from services.records import audit, matters, packaging
from services.records.custodians import Identity
from services.records.media import MediaFiles
from services.records.models import Download, Export
from services.records.officers import Officer
from services.records.packaging import ExportError, Job, Selection
from services.records.redaction import Redactor, export_key
from services.records.schemas import DownloadLink, ExportCreate
from services.records.settings import RecordsSettings

log = logging.getLogger("services.records.exports")

QUEUED, RUNNING, READY, FAILED, EXPIRED = "queued", "running", "ready", "failed", "expired"
ACTIVE = (QUEUED, RUNNING)
MAX_ATTEMPTS = 3
CUSTODY_SHOWN = 100
EXPIRY_BATCH = 100
_LINK_PURPOSE = b"records export link"
NOTIFICATIONS_PAGE = 1000


class Gone(APIError):
    status, title, slug = 410, "Gone", "gone"


def _running() -> Conflict:
    return Conflict("An export of this is already queued or running.", slug="export-running")


# --- asking for an export ---------------------------------------------------------------


def _check_scope(body: ExportCreate) -> tuple[datetime, datetime]:
    if not body.custodians and not body.group_ids:
        raise Unprocessable("An export names custodians, groups or both.", slug="empty-scope")
    if body.date_from is None or body.date_to is None:
        raise Unprocessable(
            "An export needs a date range: both date_from and date_to.",
            slug="unbounded-scope",
            errors=[
                {"location": f"body.{name}", "message": "required", "code": "unbounded-scope"}
                for name in ("date_from", "date_to")
                if getattr(body, name) is None
            ],
        )
    return body.date_from, body.date_to


async def _active_export(
    session: AsyncSession, *, matter_id: uuid.UUID | None = None, owner_id: uuid.UUID | None = None
) -> bool:
    owner = col(Export.matter_id) == matter_id if matter_id is not None else col(Export.owner_id) == owner_id
    query = select(col(Export.id)).where(owner, col(Export.status).in_(ACTIVE)).limit(1)
    return (await session.scalar(query)) is not None


async def request_matter_export(
    session: AsyncSession, identity: Identity, officer: Officer, matter_id: uuid.UUID, body: ExportCreate
) -> Export:
    """Queues a matter's export and commits. 404 for no such matter; 409 ``matter-closed``,
    ``export-running``; 422 ``empty-scope``, ``unbounded-scope``, ``unknown-custodian``."""
    matter = await matters.get_matter(session, matter_id)
    matters.check_open(matter)
    date_from, date_to = _check_scope(body)
    if await _active_export(session, matter_id=matter_id):
        raise _running()
    reason = matter.reason
    await session.rollback()  # no transaction stays open while identity answers
    custodians = []
    if body.custodians:
        custodians = await identity.custodians(
            body.custodians,
            matter_id=matter_id,
            officer_id=officer.persona_id,
            reason=reason,
            purpose="export",
        )
    matter = await matters.lock_matter(session, matter_id)
    matters.check_open(matter)
    now = utcnow()
    scope: dict[str, Any] = {
        "kind": "matter",
        "custodians": [str(c) for c in body.custodians],
        "personas": [
            {"persona_id": str(p.id), "account_id": str(c.account_id), "context": p.context}
            for c in custodians
            for p in c.personas
        ],
        "profiles": [p.model_dump(mode="json") for c in custodians for p in c.personas],
        "group_ids": [str(g) for g in body.group_ids],
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "terms": list(body.terms),
        "contexts": list(body.contexts),
        "classes": list(body.classes),
        "include_versions": body.include_versions,
        "redact": body.redact,
    }
    export = Export(
        matter_id=matter_id, requested_by=officer.persona_id, scope=scope, as_of=now, created_at=now
    )
    session.add(export)
    audit.record(
        session,
        officer.persona_id,
        "export.requested",
        matter_id=matter_id,
        export_id=str(export.id),
        custodians=scope["custodians"],
        personas=[p["persona_id"] for p in scope["personas"]],
        group_ids=scope["group_ids"],
        date_from=scope["date_from"],
        date_to=scope["date_to"],
        terms=len(body.terms),
        contexts=scope["contexts"],
        classes=scope["classes"],
        include_versions=body.include_versions,
        redact=body.redact,
    )
    await _commit_one(session)
    return export


async def _commit_one(session: AsyncSession) -> None:
    """Commits a new export; the partial unique index refuses a second active one."""
    try:
        await session.commit()
    except IntegrityError as exc:  # another request queued one at the same moment
        await session.rollback()
        raise _running() from exc


async def request_own_export(session: AsyncSession, identity: Identity, caller: Principal) -> Export:
    """Queues a persona's own export and commits: the personas identity says it may export
    (from a professional token, both of its owner's; from a personal one, itself alone).
    409 ``export-running``."""
    assert caller.persona_id is not None
    if await _active_export(session, owner_id=caller.persona_id):
        raise _running()
    await session.rollback()
    profiles = await identity.own_personas(caller.persona_id)
    now = utcnow()
    scope = {
        "kind": "own",
        "personas": [{"persona_id": str(p.id), "context": p.context} for p in profiles],
        "profiles": [p.model_dump(mode="json") for p in profiles],
    }
    export = Export(
        owner_id=caller.persona_id, requested_by=caller.persona_id, scope=scope, as_of=now, created_at=now
    )
    session.add(export)
    await _commit_one(session)
    return export


# --- reading them -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class View:
    export: Export
    downloads: list[Download]
    downloads_total: int


async def _views(session: AsyncSession, rows: Sequence[Export]) -> list[View]:
    ids = [r.id for r in rows]
    if not ids:
        return []
    totals: dict[uuid.UUID, int] = dict(
        (
            await session.execute(
                select(col(Download.export_id), func.count())
                .where(col(Download.export_id).in_(ids))
                .group_by(col(Download.export_id))
            )
        ).all()
    )
    views = []
    for row in rows:
        shown: list[Download] = []
        if totals.get(row.id):
            query = (
                select(Download)
                .where(col(Download.export_id) == row.id)
                .order_by(col(Download.id).desc())
                .limit(CUSTODY_SHOWN)
            )
            shown = list((await session.scalars(query)).all())
        views.append(View(row, shown, int(totals.get(row.id, 0))))
    return views


async def _matter_export(session: AsyncSession, matter_id: uuid.UUID, export_id: uuid.UUID) -> Export:
    export = await session.get(Export, export_id)
    if export is None or export.matter_id != matter_id:
        raise NotFound("No such export of this matter.")
    return export


async def find_matter_exports(
    session: AsyncSession, officer: Officer, matter_id: uuid.UUID, *, before: uuid.UUID | None, limit: int
) -> list[View]:
    """Up to ``limit + 1`` exports of the matter, newest first; the read is audited."""
    matter = await matters.get_matter(session, matter_id)
    query = (
        select(Export)
        .where(col(Export.matter_id) == matter.id)
        .order_by(col(Export.id).desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(col(Export.id) < before)
    rows = list((await session.scalars(query)).all())
    views = await _views(session, rows)
    audit.record(session, officer.persona_id, "exports.listed", matter_id=matter.id)
    await session.commit()
    return views


async def read_matter_export(
    session: AsyncSession, officer: Officer, matter_id: uuid.UUID, export_id: uuid.UUID
) -> View:
    export = await _matter_export(session, matter_id, export_id)
    (view,) = await _views(session, [export])
    audit.record(session, officer.persona_id, "export.read", matter_id=matter_id, export_id=str(export.id))
    await session.commit()
    return view


async def read_own_export(session: AsyncSession, caller: Principal, export_id: uuid.UUID) -> View:
    """The caller's own export; another's is 404, as if there were none."""
    export = await session.get(Export, export_id)
    if export is None or export.owner_id is None or export.owner_id != caller.persona_id:
        raise NotFound("No such export of yours.")
    (view,) = await _views(session, [export])
    return view


# --- links and downloads ------------------------------------------------------------------


def _link_key(settings: RecordsSettings) -> bytes:
    return hmac.new(
        settings.internal_token.get_secret_value().encode(), _LINK_PURPOSE, hashlib.sha256
    ).digest()


def signature(settings: RecordsSettings, export_id: uuid.UUID, expires: int) -> str:
    """The link's signature: bound to the export and to the link's expiry."""
    return hmac.new(_link_key(settings), f"{export_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def package_path(export: Export) -> str:
    if export.matter_id is not None:
        return f"/api/v1/records/matters/{export.matter_id}/exports/{export.id}/package"
    return f"/api/v1/me/exports/{export.id}/package"


def link(settings: RecordsSettings, export: Export) -> DownloadLink | None:
    """A signed download link for a ready export, valid ``link_minutes`` from now."""
    if export.status != READY:
        return None
    expires = int(time.time()) + settings.link_minutes * 60
    query = f"expires={expires}&signature={signature(settings, export.id, expires)}"
    return DownloadLink(
        url=f"{package_path(export)}?{query}", expires_at=datetime.fromtimestamp(expires, UTC)
    )


def check_link(settings: RecordsSettings, export_id: uuid.UUID, expires: int, given: str) -> None:
    """403 ``bad-signature`` for a link not made here for this export and expiry; 410
    ``link-expired`` past its expiry."""
    if not hmac.compare_digest(signature(settings, export_id, expires).encode(), given.encode()):
        raise Forbidden("This download link is not valid.", slug="bad-signature")
    if expires < time.time():
        raise Gone(
            "This download link has expired: read the export again for a new one.", slug="link-expired"
        )


@dataclass(slots=True)
class Package:
    """An open package, ready to be streamed: it stays readable even if it is deleted now."""

    file: IO[bytes]
    size: int
    filename: str

    def chunks(self, size: int = 1 << 16) -> Any:
        try:
            while chunk := self.file.read(size):
                yield chunk
        finally:
            self.file.close()


def _open(status: str, path: str | None, export_id: uuid.UUID) -> Package:
    if status != EXPIRED and status != READY:
        raise Conflict("The package is not ready.", slug="export-not-ready")
    if status == EXPIRED or path is None:
        raise Gone("The package was deleted; ask for a new export.", slug="export-expired")
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by Package.chunks
    except FileNotFoundError as exc:
        raise Gone("The package was deleted; ask for a new export.", slug="export-expired") from exc
    return Package(stream, os.fstat(stream.fileno()).st_size, f"export-{export_id}.zip")


async def take_matter_package(
    session: AsyncSession,
    settings: RecordsSettings,
    officer: Officer,
    matter_id: uuid.UUID,
    export_id: uuid.UUID,
    expires: int,
    given: str,
) -> Package:
    """The package, its download recorded in the export's custody and the audit log."""
    export = await _matter_export(session, matter_id, export_id)
    check_link(settings, export.id, expires, given)
    package = await asyncio.to_thread(_open, export.status, export.path, export.id)
    try:
        session.add(Download(export_id=export.id, by=officer.persona_id))
        audit.record(
            session,
            officer.persona_id,
            "export.downloaded",
            matter_id=matter_id,
            export_id=str(export.id),
            sha256=export.sha256,
        )
        await session.commit()
    except BaseException:
        package.file.close()
        raise
    return package


async def take_own_package(
    session: AsyncSession,
    settings: RecordsSettings,
    caller: Principal,
    export_id: uuid.UUID,
    expires: int,
    given: str,
) -> Package:
    """The caller's own package, its download recorded in the export's custody."""
    assert caller.persona_id is not None
    view = await read_own_export(session, caller, export_id)
    check_link(settings, view.export.id, expires, given)
    package = await asyncio.to_thread(_open, view.export.status, view.export.path, view.export.id)
    try:
        session.add(Download(export_id=view.export.id, by=caller.persona_id))
        await session.commit()
    except BaseException:
        package.file.close()
        raise
    return package


# --- the worker -------------------------------------------------------------------------


class LostLease(Exception):
    """Another worker holds the job now: this one stops and leaves the files alone."""


class Unavailable(Exception):
    """A service the export needs did not answer: the job is tried again later."""


class _Notifications(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[dict[str, Any]]
    next: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Feed:
    """Feed's internal route for a persona's notifications (a persona's own export)."""

    client: httpx.AsyncClient
    settings: RecordsSettings

    async def notifications(self, persona_id: uuid.UUID) -> AsyncIterator[list[dict[str, Any]]]:
        after: uuid.UUID | None = None
        token = self.settings.internal_token.get_secret_value()
        while True:
            params: dict[str, str | int] = {"persona_id": str(persona_id), "limit": NOTIFICATIONS_PAGE}
            if after is not None:
                params["after"] = str(after)
            try:
                resp = await self.client.get(
                    self.settings.feed_url.rstrip("/") + "/internal/records/notifications",
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self.settings.call_timeout_seconds,
                )
            except httpx.HTTPError as exc:
                raise Unavailable(f"Feed did not answer ({type(exc).__name__}).") from exc
            if resp.status_code != 200:
                raise Unavailable(f"Feed answered {resp.status_code}.")
            try:
                page = _Notifications.model_validate_json(resp.content)
            except ValidationError as exc:
                raise Unavailable("Feed answered an unexpected body.") from exc
            yield page.items
            if page.next is None or not page.items:
                return
            after = page.next


def _selection(export: Export) -> tuple[Selection, frozenset[uuid.UUID]]:
    """What the export holds, and the personas it is about (never redacted)."""
    scope = export.scope
    personas = tuple(uuid.UUID(p["persona_id"]) for p in scope.get("personas", []))
    if scope.get("kind") == "own":
        selection = Selection(as_of=export.as_of, personas=personas, related=False)
    else:
        selection = Selection(
            as_of=export.as_of,
            personas=personas,
            group_ids=tuple(uuid.UUID(g) for g in scope["group_ids"]),
            date_from=datetime.fromisoformat(scope["date_from"]),
            date_to=datetime.fromisoformat(scope["date_to"]),
            terms=tuple(scope["terms"]),
            contexts=tuple(scope["contexts"]),
            classes=tuple(scope["classes"]),
            include_versions=bool(scope["include_versions"]),
        )
    return selection, frozenset(personas)


def _public_scope(export: Export) -> dict[str, Any]:
    """The scope as the package states it: without the profiles (an entry of their own)."""
    return {k: v for k, v in sorted(export.scope.items()) if k != "profiles"}


class Exporter(Periodic):
    """Writes the queued exports, one at a time, and deletes the packages past their days."""

    def __init__(
        self,
        database: Database,
        settings: RecordsSettings,
        client: httpx.AsyncClient,
        *,
        interval: float | None = None,
    ) -> None:
        super().__init__(settings.export_poll_seconds if interval is None else interval)
        self.database = database
        self.settings = settings
        self.client = client
        self.directory = Path(settings.export_dir).absolute()

    def files(self, export_id: uuid.UUID) -> tuple[Path, Path]:
        """The package being written, and the package."""
        return self.directory / f"{export_id}.zip.part", self.directory / f"{export_id}.zip"

    async def tick(self) -> int:
        await self.expire()
        done = 0
        while not self.stopping.is_set() and await self.run_once():
            done += 1
        return done

    async def run_once(self) -> bool:
        """Takes one job and writes its package; False when there was none to take."""
        export = await self._claim()
        if export is None:
            return False
        await self._produce(export)
        return True

    # claiming and the lease

    async def _claim(self) -> Export | None:
        now = utcnow()
        async with self.database.sessionmaker() as session:
            await self._give_up(session, now)
            takeable = or_(
                col(Export.status) == QUEUED,
                and_(col(Export.status) == RUNNING, col(Export.lease_until) < now),
            )
            query = (
                select(col(Export.id))
                .where(takeable)
                .order_by(col(Export.created_at), col(Export.id))
                .limit(10)
            )
            candidates = list((await session.scalars(query)).all())
            await session.rollback()
            for export_id in candidates:
                result = await session.execute(
                    update(Export)
                    .where(col(Export.id) == export_id, takeable, col(Export.attempts) < MAX_ATTEMPTS)
                    .values(
                        status=RUNNING,
                        attempts=Export.attempts + 1,
                        lease_until=now + timedelta(seconds=self.settings.lease_seconds),
                        counted=0,
                    )
                    .execution_options(synchronize_session=False)
                )
                await session.commit()
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    return await session.get(Export, export_id, populate_existing=True)
        return None

    async def _give_up(self, session: AsyncSession, now: datetime) -> None:
        """A job whose last attempt's lease ran out is failed for good, its leftover removed."""
        query = select(Export).where(
            col(Export.status) == RUNNING, col(Export.lease_until) < now, col(Export.attempts) >= MAX_ATTEMPTS
        )
        for export in (await session.scalars(query)).all():
            result = await session.execute(
                update(Export)
                .where(
                    col(Export.id) == export.id,
                    col(Export.status) == RUNNING,
                    col(Export.attempts) == export.attempts,
                )
                .values(
                    status=FAILED,
                    lease_until=None,
                    finished_at=now,
                    error=_short(f"Given up after {export.attempts} attempts. {export.error or ''}".strip()),
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            if result.rowcount == 1:  # type: ignore[attr-defined]
                await asyncio.to_thread(packaging.remove, *self.files(export.id))
        await session.rollback()

    async def _renew(self, export_id: uuid.UUID, attempt: int, **values: Any) -> None:
        """Lengthens the lease (and writes ``values``); LostLease if another worker has it."""
        lease = utcnow() + timedelta(seconds=self.settings.lease_seconds)
        async with self.database.sessionmaker() as session:
            result = await session.execute(
                update(Export)
                .where(
                    col(Export.id) == export_id,
                    col(Export.status) == RUNNING,
                    col(Export.attempts) == attempt,
                )
                .values(lease_until=lease, **values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LostLease(str(export_id))

    # writing

    def _job(self, export: Export) -> Job:
        selection, kept = _selection(export)
        own = export.scope.get("kind") == "own"
        redactor = None
        if own or export.scope.get("redact"):
            key = export_key(self.settings.internal_token.get_secret_value(), export.id)
            redactor = Redactor(key, kept)
        custody = {
            "event": "requested",
            "by": str(export.requested_by),
            "at": export.as_of.isoformat(),
            "scope": _public_scope(export),
        }
        if export.matter_id is not None:
            custody["matter_id"] = str(export.matter_id)
        return Job(
            selection=selection,
            scope=_public_scope(export),
            custody=[custody],
            profiles=list(export.scope.get("profiles", [])),
            max_items=self.settings.export_max_items,
            redactor=redactor,
            notifications=Feed(self.client, self.settings).notifications if own else None,
            spool_dir=str(self.directory),
            media=MediaFiles(self.client, self.settings).copy,
        )

    async def _produce(self, export: Export) -> None:
        attempt = export.attempts
        part, final = self.files(export.id)
        renewed = [time.monotonic()]
        every = min(5.0, self.settings.lease_seconds / 4)

        async def progress(counted: int, total: int) -> None:
            if counted == 0 or time.monotonic() - renewed[0] >= every:
                await self._renew(export.id, attempt, counted=counted, total=total)
                renewed[0] = time.monotonic()

        try:
            await asyncio.to_thread(self._prepare, part)
            written = await packaging.write(self.database, self._job(export), part, progress)
            await self._renew(export.id, attempt, counted=written.items, total=written.total)
            await asyncio.to_thread(packaging.publish, part, final)
            await self._finish(export.id, attempt, written, final)
        except LostLease:
            log.warning("export lease lost", extra={"export_id": str(export.id)})
        except Unavailable as exc:
            await asyncio.to_thread(packaging.remove, part)
            await self._later(export.id, attempt, str(exc))
        except Exception as exc:
            log.exception("export failed", extra={"export_id": str(export.id)})
            await asyncio.to_thread(packaging.remove, part, final)
            await self._fail(export.id, attempt, _reason(exc))

    def _prepare(self, part: Path) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        part.unlink(missing_ok=True)  # what a killed attempt left

    async def _finish(
        self, export_id: uuid.UUID, attempt: int, written: packaging.Written, final: Path
    ) -> None:
        async with self.database.sessionmaker() as session:
            result = await session.execute(
                update(Export)
                .where(
                    col(Export.id) == export_id,
                    col(Export.status) == RUNNING,
                    col(Export.attempts) == attempt,
                )
                .values(
                    status=READY,
                    lease_until=None,
                    finished_at=utcnow(),
                    path=str(final),
                    size=written.size,
                    sha256=written.sha256,
                    counted=written.items,
                    total=written.total,
                    manifest={
                        # the media files' own entries stay in the package's manifest alone
                        "entries": [
                            e for e in written.manifest["entries"] if not e["name"].startswith("media/")
                        ],
                        "items": written.items,
                        "media": {"files": written.media_files, "missing": written.media_missing},
                    },
                    redacted=written.redacted,
                    error=None,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LostLease(str(export_id))
        log.info("export ready", extra={"export_id": str(export_id), "bytes": written.size})

    async def _fail(self, export_id: uuid.UUID, attempt: int, reason: str) -> None:
        async with self.database.sessionmaker() as session:
            await session.execute(
                update(Export)
                .where(
                    col(Export.id) == export_id,
                    col(Export.status) == RUNNING,
                    col(Export.attempts) == attempt,
                )
                .values(status=FAILED, lease_until=None, finished_at=utcnow(), error=_short(reason))
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def _later(self, export_id: uuid.UUID, attempt: int, reason: str) -> None:
        """Leaves the job running with a short lease: the next claim past it tries again,
        until its attempts are spent."""
        async with self.database.sessionmaker() as session:
            await session.execute(
                update(Export)
                .where(
                    col(Export.id) == export_id,
                    col(Export.status) == RUNNING,
                    col(Export.attempts) == attempt,
                )
                .values(lease_until=utcnow() + timedelta(seconds=10 * attempt), error=_short(reason))
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    # expiry

    async def expire(self) -> int:
        """Deletes the packages older than ``export_days``; their exports become ``expired``."""
        cutoff = utcnow() - timedelta(days=self.settings.export_days)
        done = 0
        while True:
            async with self.database.sessionmaker() as session:
                query = (
                    select(col(Export.id))
                    .where(col(Export.status) == READY, col(Export.finished_at) < cutoff)
                    .order_by(col(Export.finished_at))
                    .limit(EXPIRY_BATCH)
                )
                due = list((await session.scalars(query)).all())
                await session.rollback()
                for export_id in due:
                    # the file first: an export still marked ready without its file answers 410
                    await asyncio.to_thread(packaging.remove, *self.files(export_id))
                    await session.execute(
                        update(Export)
                        .where(col(Export.id) == export_id, col(Export.status) == READY)
                        .values(status=EXPIRED, path=None)
                        .execution_options(synchronize_session=False)
                    )
                    await session.commit()
                    done += 1
            if len(due) < EXPIRY_BATCH:
                return done


def _short(text: str) -> str:
    return text if len(text) <= 1000 else text[:997] + "..."


def _reason(exc: Exception) -> str:
    """What an officer reads of a failure: never a path or a trace."""
    if isinstance(exc, ExportError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"The package could not be written: {exc.strerror or type(exc).__name__}."
    return f"The export failed ({type(exc).__name__}); ask for it again."


def worker(app: FastAPI) -> Exporter:
    exporter = Exporter(app.state.database, app.state.settings, app.state.http_client)
    app.state.exporter = exporter
    return exporter


async def run_once(app: FastAPI, **parts: Any) -> bool:
    """One job of ``app``'s records, as its worker would (``parts`` replace the app's
    database, settings or client): for tests and scripts."""
    exporter = Exporter(
        parts.get("database", app.state.database),
        parts.get("settings", app.state.settings),
        parts.get("client", app.state.http_client),
    )
    return await exporter.run_once()
