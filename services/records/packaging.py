"""The export package: one zip, written in bounded memory (decision 0033, "Exports").

Items are read a page at a time (keyset on the id) with their versions, and each page is
written at once to the zip entry being filled, in a worker thread: however large the export,
the process holds one page. Each kind of content has a JSON Lines entry (the exact copy) and a
CSV one (for a spreadsheet); the CSV is spooled to a temporary file beside the package while
the JSON Lines entry is written, then copied in, so the copy is read once.

- ``posts.jsonl``, ``posts.csv``: one line per version of each post, the item's fields and the
  version's; the text is the one in force at that version (a deletion or a moderation change
  carries the text before it; ``text_version`` says which version wrote it);
- ``comments.*``, ``reactions.*``: likewise;
- ``media/<media id>.<ext>``: the bytes of each media file attached to a post or a comment
  in the export (and of a media in scope whose owner is not in the copy), as media stores
  them, fetched from media a file at a time and copied in through a spool file (never whole in
  memory); stored, not compressed (they mostly are already). The path names the media alone;
- ``media.jsonl``, ``media.csv`` (when the export holds media): one line per version of each
  media (its metadata, its description, the path of its bytes, or why they are missing). A
  file media cannot give (``media.MediaFiles``), or whose bytes do not have the SHA-256 media
  recorded for it (``digest-mismatch``), is left out and listed under the manifest's
  ``media.missing`` with its reason: the export does not fail for it;
- ``memberships.jsonl``, ``.csv``: the membership history of the groups and personas in scope,
  up to ``as_of``;
- ``groups.jsonl``: the charter of each group in scope or named by a line, with its versions;
- ``profiles.jsonl``: the profiles of the personas the export is about, as identity gave them;
- ``notifications.jsonl`` (a persona's own export only): its notifications, from feed;
- ``custody.jsonl``: who asked for the export, when, and for what;
- ``manifest.json``, last: for every other entry its SHA-256, size and item count; the scope;
  ``as_of``; ``generated_at``.

A version is in the export when records recorded it at or before ``as_of``. Lines are in the
order of (item id, version); entries carry a fixed date, compression and attributes; JSON is
written with sorted keys and fixed separators. Two exports of the same scope at the same
``as_of`` are thus the same bytes, but for the manifest's ``generated_at``.

A CSV cell that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) is prefixed with ``'``; the JSON Lines entries hold the text
as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
import uuid
import zipfile
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, Text, and_, cast, exists, false, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from kit.db import Database
from kit.text import LIKE_ESCAPE, like_escape
from kit.timeutil import utcnow
from services.records.classes import CONTENT_CLASSES
from services.records.media import Missing, Sink
from services.records.models import (
    GroupRecord,
    GroupVersion,
    Item,
    ItemVersion,
    MediaRecord,
    MediaVersion,
    MembershipEvent,
)
from services.records.redaction import Redactor

FORMAT = "govsocial-records-export/1"
PAGE = 1000
ENTRY_DATE = (1980, 1, 1, 0, 0, 0)
ENTRY_MODE = 0o100644 << 16  # a regular file, rw-r--r--
UNIX = 3
COPY_CHUNK = 1 << 20

ITEM: Table = Item.__table__  # type: ignore[attr-defined]
VERSION: Table = ItemVersion.__table__  # type: ignore[attr-defined]
MEMBERSHIP: Table = MembershipEvent.__table__  # type: ignore[attr-defined]
GROUP: Table = GroupRecord.__table__  # type: ignore[attr-defined]
GROUP_VERSION: Table = GroupVersion.__table__  # type: ignore[attr-defined]
MEDIA: Table = MediaRecord.__table__  # type: ignore[attr-defined]
MEDIA_VERSION: Table = MediaVersion.__table__  # type: ignore[attr-defined]
MEDIA_PAGE = 100  # media rows read at a time: each is then a call to media
DIGEST_MISMATCH = "digest-mismatch"  # the bytes media gave are not those the record names
# A version's JSON lists read as text, decoded only when not empty (most are): decoding every
# one was a sixth of an export's time.
VERSION_COLUMNS = (
    *(VERSION.c[name] for name in ("item_id", "version", "change", "body", "at", "recorded_at")),
    *(cast(VERSION.c[name], Text).label(name) for name in ("links", "mentions", "tags")),
)
_EMPTY = frozenset({"[]", "", "null"})

CONTENT_COLUMNS = (
    "id",
    "version",
    "kind",
    "class",
    "context",
    "author_id",
    "group_id",
    "post_id",
    "parent_id",
    "audience",
    "reaction",
    "created_at",
    "change",
    "at",
    "recorded_at",
    "text_version",
    "body",
    "links",
    "mentions",
    "tags",
)
MEMBERSHIP_COLUMNS = ("id", "group_id", "persona_id", "context", "role", "change", "at")
MEDIA_COLUMNS = (
    "id",
    "version",
    "owner_kind",
    "owner_id",
    "post_id",
    "comment_id",
    "group_id",
    "author_id",
    "context",
    "class",
    "media_type",
    "content_type",
    "filename",
    "size",
    "sha256",
    "created_at",
    "change",
    "at",
    "recorded_at",
    "description",
    "withdrawn_at",
    "file",
    "missing",
)
# The name a media's bytes get in the package: its id, and an extension from its type (a fixed
# table, so that the name does not depend on the machine's MIME database).
MEDIA_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp",
    "text/plain": ".txt",
    "text/csv": ".csv",
}

# Each kind of content, its entries' name, and the classes an item of it can be in.
KINDS = (
    ("post", "posts", ("organisation_posts", "followers_posts", "group_posts", "personal_content")),
    ("comment", "comments", ("comments", "personal_content")),
    ("reaction", "reactions", ("reactions", "personal_content")),
)
_DELETED = {"post": "deleted", "comment": "deleted", "reaction": "removed"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class ExportError(Exception):
    """A package that cannot be made from this scope; the message is the officer's to read."""


Progress = Callable[[int, int], Awaitable[None]]
"""Called with (items written, items in scope) after each page; it may raise to stop."""

Notifications = Callable[[uuid.UUID], AsyncIterator[list[dict[str, Any]]]]
"""A persona's notifications, a page at a time, in id order."""

MediaSource = Callable[[uuid.UUID, Sink], Awaitable[int]]
"""Hands a media file's bytes to the sink as they arrive (``media.MediaFiles.copy``); raises
``media.Missing`` when they cannot be had."""


def media_path(media_id: Any, content_type: str) -> str:
    """Where a media's bytes are in the package: named by the media alone."""
    return f"media/{media_id}{MEDIA_EXTENSIONS.get(content_type, '.bin')}"


@dataclass(frozen=True, slots=True)
class Selection:
    """What an export holds, as conditions on the records copy.

    ``related``: the comments and reactions on a selected post are in it too, whatever their
    author or date (a matter's export, as a hold covers them); a persona's own export has only
    the persona's own items."""

    as_of: datetime
    personas: tuple[uuid.UUID, ...]
    group_ids: tuple[uuid.UUID, ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    terms: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ("professional", "personal")
    classes: tuple[str, ...] = CONTENT_CLASSES
    include_versions: bool = True
    related: bool = True

    def _direct(self, item: Any) -> ColumnElement[bool]:
        """An item the scope names itself: by its author or group, date, context and text."""
        version = VERSION.alias("term_version")
        words = self._named(item, version, version.c.item_id, version.c.body)
        return and_(words, item.c.context.in_(self.contexts))

    def _named(self, row: Any, version: Any, version_of: Any, text: Any) -> ColumnElement[bool]:
        """A row (an item, a media) the scope names itself: by its author or group, its date,
        and with terms, a version of its ``text`` recorded by the scope's time."""
        who = []
        if self.personas:
            who.append(row.c.author_id.in_(self.personas))
        if self.group_ids:
            who.append(row.c.group_id.in_(self.group_ids))
        conditions: list[ColumnElement[bool]] = [or_(*who) if who else false()]
        if self.date_from is not None:
            conditions.append(row.c.created_at >= self.date_from)
        if self.date_to is not None:
            conditions.append(row.c.created_at <= self.date_to)
        if self.terms:
            lowered = func.lower(text)
            matches = [lowered.like(f"%{like_escape(t)}%", escape=LIKE_ESCAPE) for t in self.terms]
            conditions.append(
                exists().where(version_of == row.c.id, version.c.recorded_at <= self.as_of, or_(*matches))
            )
        return and_(*conditions)

    def items(self, kind: str, item: Any = ITEM) -> ColumnElement[bool]:
        """The items of ``kind`` in the export (``item``: the item table or an alias)."""
        chosen: ColumnElement[bool] = self._direct(item)
        if self.related and kind != "post":
            post = ITEM.alias("post")
            on_post = item.c.post_id.in_(select(post.c.id).where(post.c.kind == "post", self._direct(post)))
            chosen = or_(chosen, on_post)
        return and_(
            item.c.kind == kind,
            item.c.klass.in_(self.classes),
            item.c.context.in_(self.contexts),
            item.c.recorded_at <= self.as_of,  # an item first recorded later has no version in it
            chosen,
        )

    def media(self) -> ColumnElement[bool]:
        """The media in the export: those of a post or a comment in it, whatever their class;
        and a media whose post or comment is not in the copy when the scope names it itself
        (its uploader or group, attachment, context, class and, with terms, description)."""
        owner = ITEM.alias("media_owner")
        any_owner = ITEM.alias("media_any_owner")
        by_owner = (
            exists()
            .where(
                owner.c.id == MEDIA.c.owner_id,
                or_(
                    and_(MEDIA.c.owner_kind == "post", self.items("post", owner)),
                    and_(MEDIA.c.owner_kind == "comment", self.items("comment", owner)),
                ),
            )
            .correlate_except(owner)
        )
        orphan = and_(
            ~exists().where(any_owner.c.id == MEDIA.c.owner_id).correlate_except(any_owner),
            MEDIA.c.klass.in_(self.classes),
            self._direct_media(),
        )
        return and_(
            MEDIA.c.context.in_(self.contexts), MEDIA.c.recorded_at <= self.as_of, or_(by_owner, orphan)
        )

    def _direct_media(self) -> ColumnElement[bool]:
        version = MEDIA_VERSION.alias("term_media_version")
        return self._named(MEDIA, version, version.c.media_id, version.c.description)

    def every_version(self, kind: str, klass: str) -> bool:
        """Whether an item's earlier versions go in: a professional post's are the class
        ``edit_history``."""
        if not self.include_versions:
            return False
        return kind != "post" or klass == "personal_content" or "edit_history" in self.classes


@dataclass(slots=True)
class Job:
    """One package to write: what it holds and what it says of itself."""

    selection: Selection
    scope: dict[str, Any]
    custody: list[dict[str, Any]]
    profiles: list[dict[str, Any]]
    max_items: int
    redactor: Redactor | None = None
    notifications: Notifications | None = None
    spool_dir: str | None = None
    media: MediaSource | None = None


@dataclass(slots=True)
class Written:
    size: int
    sha256: str
    items: int
    total: int
    manifest: dict[str, Any]
    redacted: dict[str, int] = field(default_factory=dict)
    media_files: int = 0
    media_missing: int = 0


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_rows(lines: Iterable[dict[str, Any]], columns: Sequence[str], *, header: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for line in lines:
        writer.writerow([_cell(line.get(c)) for c in columns])
    return buffer.getvalue().encode()


class _Entry:
    """One zip entry being written: its digest, size and item count as they grow."""

    def __init__(self, archive: zipfile.ZipFile, name: str, *, stored: bool = False) -> None:
        info = zipfile.ZipInfo(name, date_time=ENTRY_DATE)
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        info.external_attr = ENTRY_MODE
        info.create_system = UNIX
        self.name = name
        self.handle = archive.open(info, "w", force_zip64=True)
        self.digest = hashlib.sha256()
        self.size = 0
        self.items = 0

    def write(self, data: bytes) -> None:
        if data:
            self.handle.write(data)
            self.digest.update(data)
            self.size += len(data)

    def close(self) -> dict[str, Any]:
        self.handle.close()
        return {"name": self.name, "sha256": self.digest.hexdigest(), "bytes": self.size, "items": self.items}


class _Zip:
    """The package file; every method runs in a worker thread, one at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # readable by the service alone: a package holds records
        self.file = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self.archive = zipfile.ZipFile(self.file, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.entries: list[dict[str, Any]] = []

    def entry(self, name: str, *, stored: bool = False) -> _Entry:
        return _Entry(self.archive, name, stored=stored)

    def closed(self, entry: _Entry) -> None:
        self.entries.append(entry.close())

    def copy(self, name: str, spool: IO[bytes], items: int, *, stored: bool = False) -> None:
        entry = self.entry(name, stored=stored)
        spool.seek(0)
        while chunk := spool.read(COPY_CHUNK):
            entry.write(chunk)
        entry.items = items
        self.closed(entry)

    def whole(self, name: str, data: bytes, items: int) -> None:
        entry = self.entry(name)
        entry.write(data)
        entry.items = items
        self.closed(entry)

    def finish(self) -> tuple[int, str]:
        """Closes the zip, makes it durable, and gives its size and SHA-256."""
        self.archive.close()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        digest = hashlib.sha256()
        size = 0
        with open(self.path, "rb") as stream:
            while chunk := stream.read(COPY_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the package is thrown away anyway
            self.archive.close()
        self.file.close()


def _list(value: str | None) -> list[Any]:
    if value is None or value in _EMPTY:
        return []
    decoded = json.loads(value)
    return list(decoded) if isinstance(decoded, list) else []


def _content_lines(
    item: Row[Any], versions: Sequence[Row[Any]], *, every: bool, keep_deleted: bool
) -> list[dict[str, Any]]:
    """The lines of one item: each version (or its latest alone), the text carried forward
    from the version that last wrote it."""
    if not versions:
        return []
    kind = str(item.kind)
    # The item's state is that of its latest change by the owner's time (a late event's version
    # is numbered last but changes nothing).
    latest = max(versions, key=lambda v: (v.at, v.version))
    if not keep_deleted and (
        latest.change == _DELETED[kind]
        or (kind != "reaction" and any(v.change == "deleted" for v in versions))
    ):
        return []
    base = {
        "id": str(item.id),
        "kind": kind,
        "class": item.klass,
        "context": item.context,
        "author_id": _id(item.author_id),
        "group_id": _id(item.group_id),
        "post_id": _id(item.post_id),
        "parent_id": _id(item.parent_id),
        "audience": item.audience,
        "reaction": item.reaction,
        "created_at": _iso(item.created_at),
    }
    text: dict[str, Any] = {"text_version": None, "body": None, "links": [], "mentions": [], "tags": []}
    lines = []
    for version in versions:
        if version.body is not None:
            text = {
                "text_version": version.version,
                "body": version.body,
                "links": _list(version.links),
                "mentions": [str(m) for m in _list(version.mentions)],
                "tags": _list(version.tags),
            }
        if every or version is latest:
            lines.append(
                {
                    **base,
                    "version": version.version,
                    "change": version.change,
                    "at": _iso(version.at),
                    "recorded_at": _iso(version.recorded_at),
                    **text,
                }
            )
    return lines


def _media_lines(media: Row[Any], versions: Sequence[Row[Any]], *, every: bool) -> list[dict[str, Any]]:
    """The lines of one media: each version (or its latest alone, left out when withdrawn)."""
    if not versions:
        return []
    latest = max(versions, key=lambda v: (v.at, v.version))
    if not every and latest.withdrawn_at is not None:
        return []
    base = {
        "id": str(media.id),
        "post_id": _id(media.post_id),
        "comment_id": _id(media.comment_id),
        "group_id": _id(media.group_id),
        "author_id": _id(media.author_id),
        "context": media.context,
        "class": media.klass,
        "media_type": media.media_type,
        "content_type": media.content_type,
        "filename": media.filename,
        "size": media.size,
        "sha256": media.sha256,
        "created_at": _iso(media.created_at),
    }
    return [
        {
            **base,
            "version": version.version,
            "owner_kind": version.owner_kind,
            "owner_id": _id(version.owner_id),
            "change": version.change,
            "at": _iso(version.at),
            "recorded_at": _iso(version.recorded_at),
            "description": version.description,
            "withdrawn_at": _iso(version.withdrawn_at),
        }
        for version in versions
        if every or version is latest
    ]


class _Writer:
    """Fills the package: the async side reads the database, the thread side writes."""

    def __init__(self, database: Database, job: Job, path: Path, progress: Progress) -> None:
        self.database = database
        self.job = job
        self.path = path
        self.progress = progress
        self.zip: _Zip | None = None
        self.counted = 0
        self.total = 0
        self.groups: set[uuid.UUID] = set(job.selection.group_ids)
        self.media_files = 0
        self.media_missing: list[dict[str, str]] = []

    async def _thread(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(call, *args)

    def _spool(self) -> IO[bytes]:
        """A temporary file beside the package for a CSV entry, gone once closed."""
        return tempfile.TemporaryFile("w+b", suffix=".csv", dir=self.job.spool_dir)

    async def count(self) -> int:
        selection = self.job.selection
        total = 0
        async with self.database.read_sessionmaker() as session:
            for kind, _, classes in KINDS:
                if not set(classes) & set(selection.classes):
                    continue
                found = await session.scalar(
                    select(func.count()).select_from(ITEM).where(selection.items(kind))
                )
                total += int(found or 0)
            found = await session.scalar(select(func.count()).select_from(MEDIA).where(selection.media()))
            total += int(found or 0)
        return total

    async def write(self) -> Written:
        self.total = await self.count()
        await self.progress(0, self.total)
        if self.total > self.job.max_items:
            raise ExportError(
                f"The scope holds {self.total} items, more than the {self.job.max_items} one export may "
                "hold: narrow it (dates, custodians, groups or terms)."
            )
        self.zip = await self._thread(_Zip, self.path)
        try:
            for kind, name, classes in KINDS:
                if set(classes) & set(self.job.selection.classes):
                    await self._content(kind, name)
            await self._media()
            await self._memberships()
            await self._groups()
            await self._whole("profiles.jsonl", sorted(self.job.profiles, key=lambda p: str(p["id"])))
            if self.job.notifications is not None:
                await self._notifications(self.job.notifications)
            await self._whole("custody.jsonl", self.job.custody)
            redacted = self.job.redactor.summary() if self.job.redactor is not None else {}
            manifest = {
                "format": FORMAT,
                "as_of": _iso(self.job.selection.as_of),
                "generated_at": _iso(utcnow()),
                "scope": self.job.scope,
                "entries": list(self.zip.entries),
                "items": self.counted,
                "redacted": redacted,
                "media": {"files": self.media_files, "missing": self.media_missing},
            }
            data = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"
            await self._thread(self.zip.whole, "manifest.json", data, len(self.zip.entries))
            size, digest = await self._thread(self.zip.finish)
        except BaseException:
            await asyncio.shield(self._thread(self.zip.abort))
            raise
        return Written(
            size,
            digest,
            self.counted,
            self.total,
            manifest,
            redacted,
            media_files=self.media_files,
            media_missing=len(self.media_missing),
        )

    async def _content_pages(
        self, kind: str
    ) -> AsyncGenerator[tuple[Sequence[Row[Any]], dict[Any, list[Row[Any]]]]]:
        """The items of ``kind`` a page at a time, in id order, each with its versions."""
        selection = self.job.selection
        after: uuid.UUID | None = None
        while True:
            async with self.database.read_sessionmaker() as session:
                query = select(ITEM).where(selection.items(kind)).order_by(ITEM.c.id).limit(PAGE)
                if after is not None:
                    query = query.where(ITEM.c.id > after)
                items = (await session.execute(query)).all()
                if not items:
                    return
                found = await session.execute(
                    select(*VERSION_COLUMNS)
                    .where(
                        VERSION.c.item_id.in_([i.id for i in items]), VERSION.c.recorded_at <= selection.as_of
                    )
                    .order_by(VERSION.c.item_id, VERSION.c.version)
                )
                versions: dict[Any, list[Row[Any]]] = defaultdict(list)
                for version in found.all():
                    versions[version.item_id].append(version)
            yield items, versions
            if len(items) < PAGE:
                return
            after = items[-1].id

    async def _content(self, kind: str, name: str) -> None:
        assert self.zip is not None
        selection, redactor = self.job.selection, self.job.redactor
        entry: _Entry = await self._thread(self.zip.entry, f"{name}.jsonl")
        spool = await self._thread(self._spool)
        pages = self._content_pages(kind)
        pending: asyncio.Future[Any] | None = None
        try:
            await self._thread(spool.write, csv_rows((), CONTENT_COLUMNS, header=True))
            pending = asyncio.ensure_future(anext(pages, None))
            while (page := await pending) is not None:
                # the next page is read while this one is written
                pending = asyncio.ensure_future(anext(pages, None))
                items, versions = page
                lines: list[dict[str, Any]] = []
                written = 0
                for item in items:
                    own = _content_lines(
                        item,
                        versions.get(item.id, []),
                        every=selection.every_version(kind, item.klass),
                        keep_deleted=selection.include_versions,
                    )
                    if own:
                        written += 1
                        lines.extend(own)
                        if item.group_id is not None:
                            self.groups.add(item.group_id)
                if redactor is not None:
                    async with self.database.read_sessionmaker() as session:
                        await redactor.learn(session, lines)
                await self._thread(self._page, entry, spool, lines, written)
                self.counted += written
                await self.progress(self.counted, self.total)
            await self._thread(self.zip.closed, entry)
            await self._thread(self.zip.copy, f"{name}.csv", spool, entry.items)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            await pages.aclose()
            await self._thread(spool.close)

    def _page(self, entry: _Entry, spool: IO[bytes], lines: list[dict[str, Any]], items: int) -> None:
        if self.job.redactor is not None:
            lines = [self.job.redactor.content(line) for line in lines]
        entry.write(b"".join(dumps(line) for line in lines))
        entry.items += items
        spool.write(csv_rows(lines, CONTENT_COLUMNS))

    async def _media_pages(self) -> AsyncGenerator[tuple[Sequence[Row[Any]], dict[Any, list[Row[Any]]]]]:
        """The media in the export a page at a time, in id order, each with its versions."""
        selection = self.job.selection
        after: uuid.UUID | None = None
        while True:
            async with self.database.read_sessionmaker() as session:
                query = select(MEDIA).where(selection.media()).order_by(MEDIA.c.id).limit(MEDIA_PAGE)
                if after is not None:
                    query = query.where(MEDIA.c.id > after)
                rows = (await session.execute(query)).all()
                if not rows:
                    return
                found = await session.execute(
                    select(MEDIA_VERSION)
                    .where(
                        MEDIA_VERSION.c.media_id.in_([r.id for r in rows]),
                        MEDIA_VERSION.c.recorded_at <= selection.as_of,
                    )
                    .order_by(MEDIA_VERSION.c.media_id, MEDIA_VERSION.c.version)
                )
                versions: dict[Any, list[Row[Any]]] = defaultdict(list)
                for version in found.all():
                    versions[version.media_id].append(version)
            yield rows, versions
            if len(rows) < MEDIA_PAGE:
                return
            after = rows[-1].id

    async def _media(self) -> None:
        """Each media's bytes (an entry of their own), then its lines, spooled and copied in
        once the files are written: a zip has one entry open at a time."""
        assert self.zip is not None
        redactor = self.job.redactor
        every = self.job.selection.include_versions
        lines_spool = await self._thread(self._spool)
        csv_spool = await self._thread(self._spool)
        items = 0
        try:
            await self._thread(csv_spool.write, csv_rows((), MEDIA_COLUMNS, header=True))
            async for rows, versions in self._media_pages():
                for row in rows:
                    lines = _media_lines(row, versions.get(row.id, []), every=every)
                    if not lines:
                        continue
                    path, missing = await self._media_file(row)
                    lines = [{**line, "file": path, "missing": missing} for line in lines]
                    if row.group_id is not None:
                        self.groups.add(row.group_id)
                    if redactor is not None:
                        async with self.database.read_sessionmaker() as session:
                            await redactor.learn(session, lines)
                        lines = [redactor.media(line) for line in lines]
                    await self._thread(self._spooled, lines_spool, csv_spool, lines)
                    items += 1
                    self.counted += 1
                await self.progress(self.counted, self.total)
            if items:  # a package without media has no media entries
                await self._thread(self.zip.copy, "media.jsonl", lines_spool, items)
                await self._thread(self.zip.copy, "media.csv", csv_spool, items)
        finally:
            await self._thread(lines_spool.close)
            await self._thread(csv_spool.close)

    def _spooled(self, lines_spool: IO[bytes], csv_spool: IO[bytes], lines: list[dict[str, Any]]) -> None:
        lines_spool.write(b"".join(dumps(line) for line in lines))
        csv_spool.write(csv_rows(lines, MEDIA_COLUMNS))

    async def _media_file(self, media: Row[Any]) -> tuple[str | None, str | None]:
        """Copies a media's bytes into the package: its path there, or why they are missing."""
        assert self.zip is not None
        if self.job.media is None:
            return self._missing(media.id, "unavailable")
        spool = await self._thread(self._spool)
        pending = bytearray()
        digest = hashlib.sha256()

        async def sink(chunk: bytes) -> None:
            digest.update(chunk)
            pending.extend(chunk)
            if len(pending) >= COPY_CHUNK:
                await self._thread(spool.write, bytes(pending))
                pending.clear()
                await self.progress(self.counted, self.total)  # renews the lease through a long file

        try:
            try:
                await self.job.media(media.id, sink)
            except Missing as exc:
                return self._missing(media.id, exc.reason)
            if media.sha256 and digest.hexdigest() != media.sha256:
                # not the file the record names: left out rather than passed off as it
                return self._missing(media.id, DIGEST_MISMATCH)
            await self._thread(spool.write, bytes(pending))
            path = media_path(media.id, media.content_type)
            await asyncio.to_thread(self.zip.copy, path, spool, 1, stored=True)
        finally:
            await self._thread(spool.close)
        self.media_files += 1
        return path, None

    def _missing(self, media_id: Any, reason: str) -> tuple[None, str]:
        self.media_missing.append({"id": str(media_id), "reason": reason})
        return None, reason

    async def _memberships(self) -> None:
        """The history of the groups in scope and of the personas in scope, up to ``as_of``."""
        assert self.zip is not None
        selection, redactor = self.job.selection, self.job.redactor
        who = []
        if selection.personas:
            who.append(MEMBERSHIP.c.persona_id.in_(selection.personas))
        if selection.group_ids:
            who.append(MEMBERSHIP.c.group_id.in_(selection.group_ids))
        condition = and_(
            or_(*who) if who else false(),
            MEMBERSHIP.c.at <= selection.as_of,
            MEMBERSHIP.c.context.in_(selection.contexts),
        )
        entry: _Entry = await self._thread(self.zip.entry, "memberships.jsonl")
        spool = await self._thread(self._spool)
        try:
            await self._thread(spool.write, csv_rows((), MEMBERSHIP_COLUMNS, header=True))
            after: uuid.UUID | None = None
            while True:
                async with self.database.read_sessionmaker() as session:
                    query = select(MEMBERSHIP).where(condition).order_by(MEMBERSHIP.c.id).limit(PAGE)
                    if after is not None:
                        query = query.where(MEMBERSHIP.c.id > after)
                    rows = (await session.execute(query)).all()
                if not rows:
                    break
                lines = [
                    {
                        "id": str(r.id),
                        "group_id": str(r.group_id),
                        "persona_id": str(r.persona_id),
                        "context": r.context,
                        "role": r.role,
                        "change": r.change,
                        "at": _iso(r.at),
                    }
                    for r in rows
                ]
                self.groups.update(r.group_id for r in rows)
                if redactor is not None:
                    lines = [redactor.membership(line) for line in lines]
                await self._thread(self._rows, entry, spool, lines, MEMBERSHIP_COLUMNS)
                await self.progress(self.counted, self.total)
                after = rows[-1].id
                if len(rows) < PAGE:
                    break
            await self._thread(self.zip.closed, entry)
            await self._thread(self.zip.copy, "memberships.csv", spool, entry.items)
        finally:
            await self._thread(spool.close)

    def _rows(
        self, entry: _Entry, spool: IO[bytes], lines: list[dict[str, Any]], columns: Sequence[str]
    ) -> None:
        entry.write(b"".join(dumps(line) for line in lines))
        entry.items += len(lines)
        spool.write(csv_rows(lines, columns))

    async def _groups(self) -> None:
        """Each group's charter as of ``as_of``, with its versions: the groups in scope, and
        those the content and memberships name."""
        assert self.zip is not None
        as_of = self.job.selection.as_of
        entry: _Entry = await self._thread(self.zip.entry, "groups.jsonl")
        ids = sorted(self.groups, key=str)
        for start in range(0, len(ids), PAGE):
            batch = ids[start : start + PAGE]
            async with self.database.read_sessionmaker() as session:
                records = {
                    r.id: r for r in (await session.execute(select(GROUP).where(GROUP.c.id.in_(batch)))).all()
                }
                found = await session.execute(
                    select(GROUP_VERSION)
                    .where(GROUP_VERSION.c.group_id.in_(batch), GROUP_VERSION.c.recorded_at <= as_of)
                    .order_by(GROUP_VERSION.c.group_id, GROUP_VERSION.c.at, GROUP_VERSION.c.id)
                )
                history: dict[Any, list[Row[Any]]] = defaultdict(list)
                for version in found.all():
                    history[version.group_id].append(version)
            lines = []
            for group_id in batch:
                versions = history.get(group_id, [])
                record = records.get(group_id)
                if not versions or record is None:
                    continue
                charter = dict(versions[-1].data or {})
                lines.append(
                    {
                        "id": str(group_id),
                        "context": record.context,
                        "created_at": _iso(record.created_at),
                        "charter": charter,
                        "versions": [
                            {"change": v.change, "at": _iso(v.at), "data": dict(v.data or {})}
                            for v in versions
                        ],
                    }
                )
            await self._thread(self._lines_only, entry, lines)
        await self._thread(self.zip.closed, entry)

    def _lines_only(self, entry: _Entry, lines: list[dict[str, Any]]) -> None:
        entry.write(b"".join(dumps(line) for line in lines))
        entry.items += len(lines)

    async def _notifications(self, source: Notifications) -> None:
        assert self.zip is not None
        redactor = self.job.redactor
        entry: _Entry = await self._thread(self.zip.entry, "notifications.jsonl")
        for persona in sorted(self.job.selection.personas, key=str):
            async for page in source(persona):
                lines = [{**n, "persona_id": str(persona)} for n in page]
                if redactor is not None:
                    lines = [redactor.notification(line) for line in lines]
                await self._thread(self._lines_only, entry, lines)
                await self.progress(self.counted, self.total)
        await self._thread(self.zip.closed, entry)

    async def _whole(self, name: str, lines: list[dict[str, Any]]) -> None:
        assert self.zip is not None
        await self._thread(self.zip.whole, name, b"".join(dumps(line) for line in lines), len(lines))


async def write(database: Database, job: Job, path: Path, progress: Progress) -> Written:
    """Writes the package to ``path`` (which must not exist), flushed to disk when this
    returns; on any failure the file is closed and left for the caller to remove."""
    return await _Writer(database, job, path, progress).write()


def publish(part: Path, final: Path) -> None:
    """Gives a complete package its final name, durably (the directory entry too)."""
    os.replace(part, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def remove(*paths: Path) -> None:
    """Removes what an attempt left; a folder that cannot be written holds nothing of it."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
