"""Receiving an upload (decision 0036): ``POST /api/v1/media``, one ``file`` part and an
optional ``description``, parsed as the body streams in and never held whole in memory.

The body is fed to python-multipart's streaming parser chunk by chunk; the file part's bytes go
straight to a spool file while they are counted and hashed. Limits apply as early as they can:

- before a byte is read, when ``Content-Length`` already says the file cannot fit the file limit
  (``MEDIA_MAX_FILE_BYTES``) or what is left of the persona's quota (``MEDIA_QUOTA_BYTES``, the
  sizes of its uploads not rejected): a body may carry ``MEDIA_UPLOAD_ENVELOPE_BYTES`` besides
  the file (boundaries, part headers, the description), so ``Content-Length`` minus that is the
  least the file can be;
- as the file arrives otherwise (a chunked body, or a ``Content-Length`` that lied), the moment
  it passes either limit.

Either is a 413 problem, and so is an envelope larger than its allowance. Whatever happens
(a limit, a malformed body, the client going away, the store failing), the spool file is
removed and no row is written. Once the body is whole, the bytes are stored under
``incoming/<media id>`` and the media row is written in ``processing``; the worker does the
rest. The type the client declared is kept only until the worker decides it from the bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import TypeAdapter, ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.db import Database, upsert
from kit.defaults import random_id
from kit.errors import (
    APIError,
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
    unprocessable_from,
)
from kit.timeutil import utcnow
from services.media.models import Blob, Media
from services.media.schemas import Description
from services.media.settings import MediaSettings
from services.media.storage import Storage, spool_dir

log = logging.getLogger(__name__)

DEFAULT_TYPE = "application/octet-stream"
DESCRIPTION_BYTES = 4 * 1500  # the longest description, in UTF-8
FILENAME_LENGTH = 255
_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$")
_describe = TypeAdapter(Description)


class UnsupportedMediaType(APIError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


def _too_large(detail: str, slug: str, params: Mapping[str, int]) -> PayloadTooLarge:
    # The rest of the body is not read: the connection closes after the answer.
    return PayloadTooLarge(detail, slug=slug, headers={"Connection": "close"}, params=params)


def file_too_large(settings: MediaSettings) -> PayloadTooLarge:
    return _too_large(
        "The file exceeds {limit} bytes.", "file-too-large", params={"limit": settings.max_file_bytes}
    )


def over_quota(settings: MediaSettings, room: int) -> PayloadTooLarge:
    return _too_large(
        "The file exceeds what is left of your quota of {quota} bytes ({room} bytes).",
        "quota-exceeded",
        params={"quota": settings.quota_bytes, "room": max(room, 0)},
    )


def _field_problem(location: str, message: str) -> Unprocessable:
    return Unprocessable(
        "The upload has invalid fields.",
        errors=[{"location": f"body.{location}", "message": message, "code": "invalid"}],
    )


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a ``multipart/form-data`` body: 415 for another type, 400
    without a usable boundary."""
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise UnsupportedMediaType("An upload is sent as multipart/form-data.")
    boundary = options.get(b"boundary", b"")
    if not 1 <= len(boundary) <= 70:
        raise BadRequest("The multipart body has no valid boundary.", slug="bad-multipart")
    return boundary


def declared_length(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadRequest("Content-Length is not a number.")
    return int(value)


def clean_filename(raw: bytes | None) -> str:
    """The name the client gave, as text that is safe to store and to show: its last path
    segment, without control characters, at most 255 characters; ``file`` when none is left."""
    text = (raw or b"").decode("utf-8", errors="replace")
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()
    return text[:FILENAME_LENGTH] or "file"


def clean_type(raw: bytes | None) -> str:
    """The type the client declared for the file, when it is a plausible one."""
    kind, _ = parse_options_header(raw or b"")
    text = kind.decode("latin-1").lower()
    return text if _TYPE.match(text) else DEFAULT_TYPE


@dataclass
class _Part:
    name: str | None = None
    filename: bytes | None = None
    content_type: bytes | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)


class _Form:
    """The parser's callbacks: collects the description, writes the file part to ``sink``
    while counting and hashing it, and raises the moment a limit is passed (the exception
    leaves ``MultipartParser.write``)."""

    def __init__(self, sink: BinaryIO, settings: MediaSettings, room: int) -> None:
        self.sink = sink
        self.settings = settings
        self.room = room
        self.part = _Part()
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.file: _Part | None = None
        self.description: _Part | None = None
        self.size = 0
        self.hash = hashlib.sha256()
        self.envelope = 0  # bytes received that are not the file's
        self.ended = False
        self.in_file = False

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def received(self, count: int) -> None:
        """Bytes of the body went through the parser; what was not the file's is envelope."""
        self.envelope = count - self.size
        if self.envelope > self.settings.upload_envelope_bytes:
            raise _too_large(
                "The upload carries more than {limit} bytes besides the file.",
                "envelope-too-large",
                params={"limit": self.settings.upload_envelope_bytes},
            )

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers.append((bytes(self.header_field).lower(), bytes(self.header_value)))
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        headers = dict(self.part.headers)
        disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            raise BadRequest("A part has no form-data name.", slug="bad-multipart")
        self.part.name = name.decode("utf-8", errors="replace")
        self.part.filename = options.get(b"filename")
        self.part.content_type = headers.get(b"content-type")
        if self.part.name == "file":
            if self.file is not None:
                raise _field_problem("file", "only one file may be sent")
            self.file = self.part
            self.in_file = True
        elif self.part.name == "description":
            if self.description is not None:
                raise _field_problem("description", "only one description may be sent")
            self.description = self.part
        else:
            raise _field_problem(self.part.name[:40], "unknown field: send `file` and `description` only")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.size += end - start
            if self.size > self.settings.max_file_bytes:
                raise file_too_large(self.settings)
            if self.size > self.room:
                raise over_quota(self.settings, self.room)
            chunk = data[start:end]
            self.hash.update(chunk)
            self.sink.write(chunk)
            return
        self.part.data += data[start:end]
        if len(self.part.data) > DESCRIPTION_BYTES:
            raise _field_problem("description", "must have at most 1500 characters")

    def on_part_end(self) -> None:
        self.in_file = False

    def on_end(self) -> None:
        self.ended = True


@dataclass(frozen=True)
class Received:
    path: Path
    size: int
    sha256: str
    filename: str
    content_type: str
    description: str | None


async def _receive(
    chunks: AsyncIterator[bytes], boundary: bytes, path: Path, settings: MediaSettings, room: int
) -> Received:
    with path.open("wb") as sink:
        form = _Form(sink, settings, room)
        parser = MultipartParser(boundary, form.callbacks())
        count = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                # Small writes to a local file: each returns at once (the page cache), so the
                # loop is never held for long; the file is flushed once, at the end.
                parser.write(chunk)
                count += len(chunk)
                form.received(count)
            parser.finalize()
        except MultipartParseError as exc:
            raise BadRequest("The body is not valid multipart/form-data.", slug="bad-multipart") from exc
    if not form.ended:
        raise BadRequest("The multipart body ends before its closing boundary.", slug="bad-multipart")
    if form.file is None:
        raise Unprocessable(
            "The upload has invalid fields.",
            errors=[{"location": "body.file", "message": "a file is required", "code": "missing"}],
        )
    if form.size == 0:
        raise _field_problem("file", "the file is empty")
    description = None
    if form.description is not None and form.description.data:  # an empty field is none
        try:
            text = bytes(form.description.data).decode("utf-8")
            description = _describe.validate_python(text)
        except UnicodeDecodeError:
            raise _field_problem("description", "must be UTF-8 text") from None
        except ValidationError as exc:
            raise unprocessable_from(exc, "body.description") from None
    return Received(
        path=path,
        size=form.size,
        sha256=form.hash.hexdigest(),
        filename=clean_filename(form.file.filename),
        content_type=clean_type(form.file.content_type),
        description=description,
    )


async def quota_used(session: AsyncSession, persona_id: uuid.UUID) -> int:
    """What the persona's uploads hold against its quota: the bytes received of every upload
    not rejected (a rejected one holds no bytes)."""
    used = await session.scalar(
        select(func.coalesce(func.sum(col(Media.size)), 0)).where(
            col(Media.uploader_id) == persona_id, col(Media.status) != "rejected"
        )
    )
    return int(used or 0)


async def touch(session: AsyncSession, key: str, size: int, content_type: str) -> None:
    """Writes (or refreshes) the ``Blob`` row of ``key``, now: done, and committed, *before* its
    bytes are stored, so the sweeper leaves them alone for an hour."""
    values = {"key": key, "size": size, "content_type": content_type, "touched_at": utcnow()}
    await upsert(session, Blob, values, ["key"])


async def forget_key(database: Database, storage: Storage, key: str) -> None:
    """Deletes stored bytes nothing will name, and their ``Blob`` row."""
    await storage.delete(key)
    async with database.sessionmaker() as session, session.begin():
        await session.execute(delete(Blob).where(col(Blob.key) == key))


async def upload(
    database: Database,
    storage: Storage,
    settings: MediaSettings,
    caller: Principal,
    content_type: str | None,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
) -> Media:
    """Receives the upload, stores its bytes as they came and writes the media row (committed):
    ``processing``, the persona's, of its context."""
    assert caller.persona_id is not None and caller.context is not None
    boundary = boundary_of(content_type)
    length = declared_length(content_length)
    async with database.sessionmaker() as session:
        room = settings.quota_bytes - await quota_used(session, caller.persona_id)
    if length is not None:
        least = length - settings.upload_envelope_bytes
        if least > settings.max_file_bytes:
            raise file_too_large(settings)
        if least > room:
            raise over_quota(settings, room)
    media_id = random_id()
    key = f"incoming/{media_id}"
    path = spool_dir(settings) / f"upload-{uuid.uuid4().hex}"
    stored = False
    try:
        received = await _receive(chunks, boundary, path, settings, room)
        async with database.sessionmaker() as session, session.begin():
            await touch(session, key, received.size, received.content_type)
        stored = True
        try:
            await storage.put(key, path, received.content_type)
        except Exception as exc:
            log.exception("the store refused an upload")
            raise ServiceUnavailable("The file store is unavailable; try again shortly.") from exc
        async with database.sessionmaker() as session, session.begin():
            # Checked again with the row: two uploads at once may each have fitted alone.
            room = settings.quota_bytes - await quota_used(session, caller.persona_id)
            if received.size > room:
                raise over_quota(settings, room)
            media = Media(
                id=media_id,
                uploader_id=caller.persona_id,
                context=caller.context,
                content_type=received.content_type,
                filename=received.filename,
                description=received.description,
                size=received.size,
                sha256=received.sha256,
                incoming_key=key,
            )
            session.add(media)
        return media
    except BaseException:
        if stored:
            with contextlib.suppress(Exception):
                await forget_key(database, storage, key)
        raise
    finally:
        path.unlink(missing_ok=True)
