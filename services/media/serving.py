"""Serving a media's file or preview (decision 0036): which media a reader gets, and what the
answer is: the whole file, one range of it (``Range``), or nothing new (``If-None-Match``).

The bytes stream from the store; nothing is read whole. The headers keep an uploaded file from
acting on the page that shows it: ``X-Content-Type-Options: nosniff``, ``Content-Security-Policy:
default-src 'none'; sandbox`` (an HTML or SVG file that slipped through could run nothing),
and ``Content-Disposition: attachment`` for anything but an image, so a browser downloads a
document rather than opening it in the site's origin. The ``ETag`` is strong and derived from
the stored file's key (the SHA-256 of its bytes): the same bytes, the same tag.

Ranges: one range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) is a 206 with ``Content-Range``;
a malformed or unsatisfiable one is a 416 with ``Content-Range: bytes */<size>``; several
ranges at once are answered with the whole file (200), which HTTP allows. A ``Range`` in
another unit is ignored, as HTTP asks. ``If-Range`` with another tag also gets the whole file.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from domain.principal import Principal
from kit.errors import APIError, Conflict, NotFound, ServiceUnavailable
from services.media import library, links, visibility
from services.media.models import Media
from services.media.schemas import served
from services.media.settings import MediaSettings
from services.media.storage import Storage

log = logging.getLogger(__name__)

Variant = links.Variant
CACHE_SECONDS = 60
CSP = "default-src 'none'; sandbox"
_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiable(APIError):
    status, title, slug = 416, "Range Not Satisfiable", "range-not-satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            "The range asked for is not within the file.", headers={"Content-Range": f"bytes */{size}"}
        )


@dataclass(frozen=True)
class Stored:
    """What is served of a media: one of its stored files."""

    key: str
    size: int
    content_type: str
    inline: bool
    filename: str


@dataclass
class Answer:
    """The answer to a file request: its status, headers and, but for a 304, the bytes."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes] | None = None
    length: int = 0


def stored(media: Media, variant: Variant) -> Stored | None:
    """The stored file a variant names: the file, or an image's preview (None for a media
    without one)."""
    if variant == "file":
        if media.file_key is None or media.file_size is None:
            return None
        return Stored(
            key=media.file_key,
            size=media.file_size,
            content_type=media.content_type,
            inline=media.media_type == "image",
            filename=media.filename,
        )
    if media.preview_key is None or media.preview_size is None or media.preview_content_type is None:
        return None
    stem = media.filename.rsplit(".", 1)[0] or "preview"
    extension = media.preview_content_type.rsplit("/", 1)[-1]
    return Stored(
        key=media.preview_key,
        size=media.preview_size,
        content_type=media.preview_content_type,
        inline=True,
        filename=f"{stem}-preview.{extension}",
    )


async def find(
    session: AsyncSession,
    client: httpx.AsyncClient,
    settings: MediaSettings,
    media_id: uuid.UUID,
    variant: Variant,
    reader: Principal | None,
) -> Stored:
    """The file a reader gets: for a signed link (``reader`` None, checked already) any media
    that is served; for a persona the same, when it may read the media. Anything else is the
    404 of a missing id, but for the uploader of a media still being processed (409)."""
    media = await session.get(Media, media_id)
    if media is None:
        raise library.not_found()
    if reader is not None:
        assert reader.persona_id is not None
        if not await visibility.reader_sees(client, settings, media, reader.persona_id, reader.context):
            raise library.not_found()
        if media.status == "processing" and media.uploader_id == reader.persona_id:
            raise Conflict("The media is still being processed.", slug="media-not-ready")
    if not served(media):
        raise library.not_found()
    found = stored(media, variant)
    if found is None:
        raise NotFound("This media has no preview." if variant == "preview" else library.MISSING)
    return found


def etag(key: str) -> str:
    return f'"{key[:40]}"'


def _matches(tag: str, header: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weak comparison, as HTTP wants for it) or is
    ``*``."""
    if header.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == tag for t in header.split(","))


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range ``header`` asks for, as (first, last) byte, or None for the whole file.
    416 for a malformed or unsatisfiable range."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None  # several ranges: the whole file
    match = _RANGE.match(spec)
    if match is None or (not match.group(1) and not match.group(2)):
        raise RangeNotSatisfiable(size)
    first, last = match.group(1), match.group(2)
    if len(first) > 18 or len(last) > 18:
        raise RangeNotSatisfiable(size)
    if not first:  # the last n bytes
        count = int(last)
        if count == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - count), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable(size)
    return start, end


def disposition(found: Stored) -> str:
    kind = "inline" if found.inline else "attachment"
    ascii_name = found.filename.encode("ascii", "replace").decode().replace('"', "'").replace("\\", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(found.filename, safe='')}"


def headers(found: Stored) -> dict[str, str]:
    content_type = found.content_type
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"  # processing keeps only UTF-8 text
    return {
        "Content-Type": content_type,
        "ETag": etag(found.key),
        "Accept-Ranges": "bytes",
        "Cache-Control": f"private, max-age={CACHE_SECONDS}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CSP,
        "Content-Disposition": disposition(found),
    }


async def _primed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` with its first chunk read already: a store that lost the bytes (404) or
    cannot be reached (503) fails here, while the answer can still say so, rather than
    mid-answer."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except KeyError:
        raise library.not_found() from None
    except Exception as exc:
        log.exception("the store could not be read")
        raise ServiceUnavailable("The file store is unavailable; try again shortly.") from exc

    async def rest() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    return rest()


async def answer(
    storage: Storage, found: Stored, range_header: str | None, if_none_match: str | None, if_range: str | None
) -> Answer:
    """The answer for ``found``: 304, 200, 206 or 416."""
    common = headers(found)
    tag = common["ETag"]
    if if_none_match is not None and _matches(tag, if_none_match):
        return Answer(304, {k: v for k, v in common.items() if k in ("ETag", "Cache-Control")})
    wanted = byte_range(range_header, found.size)
    if wanted is not None and if_range is not None and if_range.strip() != tag:
        wanted = None
    if wanted is None:
        body = await _primed(aiter(storage.read(found.key)))
        return Answer(200, common, body, found.size)
    start, end = wanted
    body = await _primed(aiter(storage.read(found.key, start, end)))
    return Answer(
        206, {**common, "Content-Range": f"bytes {start}-{end}/{found.size}"}, body, end - start + 1
    )


async def records_copy(session: AsyncSession, storage: Storage, media_id: uuid.UUID) -> Answer:
    """The stored file of a media, withdrawn or not, for records' exports."""
    media = await session.get(Media, media_id)
    found = stored(media, "file") if media is not None and media.status == "ready" else None
    if found is None:
        raise library.not_found()
    body = await _primed(aiter(storage.read(found.key)))
    return Answer(
        200,
        {"Content-Type": found.content_type, "ETag": etag(found.key), "X-Content-Type-Options": "nosniff"},
        body,
        found.size,
    )
