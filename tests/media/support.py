"""Helpers for tests that need media: uploading through the gateway as a client would, and
running media's worker so that an upload is processed (the in-process suite starts no worker).

    media = await upload_ready(suite, token)                     # a small PNG, ready
    media = await upload_ready(suite, token, pdf_bytes(), "report.pdf", "application/pdf")
    created = await upload(suite, token, data, "notes.txt", "text/plain")   # still processing
    await ready(suite, created["id"])
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from services.media.models import Media
from services.media.worker import process_once
from tests.helpers import auth, person, unique
from tests.media.samples import png_bytes
from tests.suite import Suite, build_suite


@contextlib.asynccontextmanager
async def suite_with(database_urls: Mapping[str, str], **media: Any) -> AsyncIterator[Suite]:
    """The in-process suite with media's settings changed (smaller limits, a scanner)."""
    async with build_suite(database_urls, media=media) as built:
        yield built


async def people(suite: Any, *handles: str) -> list[tuple[str, str]]:
    """Registers each (a unique handle from it); their (token, persona id), known to media."""
    made = [await person(suite.client, unique(handle)) for handle in handles]
    await suite.deliver()
    return made


def media_client(suite: Any) -> httpx.AsyncClient:
    """A client that calls media itself, as the gateway does (for what the gateway would
    refuse before media saw it)."""
    return httpx.AsyncClient(transport=suite.router, base_url="http://media")


def internal_auth(suite: Any) -> dict[str, str]:
    return auth(suite.media.state.settings.internal_token.get_secret_value())


def multipart(
    data: bytes, filename: str, content_type: str, description: str | None = None
) -> dict[str, Any]:
    """httpx's ``files``/``data`` arguments for an upload."""
    fields: dict[str, Any] = {"files": {"file": (filename, data, content_type)}}
    if description is not None:
        fields["data"] = {"description": description}
    return fields


async def upload_response(
    suite: Any,
    token: str,
    data: bytes,
    filename: str,
    content_type: str = "application/octet-stream",
    description: str | None = None,
) -> httpx.Response:
    client: httpx.AsyncClient = suite.client
    return await client.post(
        "/api/v1/media", headers=auth(token), **multipart(data, filename, content_type, description)
    )


async def upload(
    suite: Any,
    token: str,
    data: bytes,
    filename: str,
    content_type: str = "application/octet-stream",
    description: str | None = None,
) -> dict[str, Any]:
    """Uploads through the gateway; the media as answered (202, ``processing``)."""
    resp = await upload_response(suite, token, data, filename, content_type, description)
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status"] == "processing", body
    return body


async def status(suite: Any, media_id: str) -> str | None:
    """The media's status as stored (None once deleted)."""
    async with suite.media.state.database.sessionmaker() as session:
        media = await session.get(Media, uuid.UUID(str(media_id)))
        return None if media is None else media.status


async def ready(suite: Any, media_id: str, *, expect: str = "ready") -> None:
    """Runs media's worker until the media is processed, and checks it became ``expect``."""
    for _ in range(20):
        if await status(suite, media_id) != "processing":
            break
        if not await process_once(suite.media):
            break  # nothing claimable: leased by a failed attempt
    assert await status(suite, media_id) == expect


async def upload_ready(
    suite: Any,
    token: str,
    data: bytes | None = None,
    filename: str = "picture.png",
    content_type: str = "image/png",
    description: str | None = None,
) -> dict[str, Any]:
    """Uploads (a small PNG by default), processes it, and returns the media as its uploader
    reads it then (``ready``, with its signed ``url``)."""
    created = await upload(
        suite, token, png_bytes() if data is None else data, filename, content_type, description
    )
    await ready(suite, created["id"])
    resp = await suite.client.get(f"/api/v1/media/{created['id']}", headers=auth(token))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status"] == "ready", body
    return body


async def attach(
    suite: Any,
    owner_kind: str,
    owner_id: str | uuid.UUID,
    persona_id: str | uuid.UUID,
    media_ids: list[str],
    **fields: Any,
) -> httpx.Response:
    """Media's internal attach call, as an owner service makes it."""
    token = suite.media.state.settings.internal_token.get_secret_value()
    async with httpx.AsyncClient(transport=suite.router, base_url="http://media") as client:
        return await client.post(
            "/internal/media/attachments",
            json={
                "owner_kind": owner_kind,
                "owner_id": str(owner_id),
                "persona_id": str(persona_id),
                "media_ids": [str(m) for m in media_ids],
                **{k: str(v) if isinstance(v, uuid.UUID) else v for k, v in fields.items()},
            },
            headers=auth(token),
        )


async def release(suite: Any, owner_kind: str, owner_id: str | uuid.UUID, **fields: Any) -> httpx.Response:
    """Media's internal release call."""
    token = suite.media.state.settings.internal_token.get_secret_value()
    body = {"owner_kind": owner_kind, "owner_id": str(owner_id), **fields}
    async with httpx.AsyncClient(transport=suite.router, base_url="http://media") as client:
        return await client.post("/internal/media/attachments/release", json=body, headers=auth(token))


async def send_events(
    suite: Any, *events: tuple[str, str, dict[str, Any]], source: str, time: datetime | None = None
) -> dict[str, Any]:
    """Delivers (type, subject, data) events to media as another service's relay would."""
    at = (time or datetime.now(UTC)).isoformat()
    batch = [
        {"id": str(uuid.uuid4()), "type": t, "source": source, "subject": s, "time": at, "data": d}
        for t, s, d in events
    ]
    async with media_client(suite) as client:
        resp = await client.post("/internal/events", json={"events": batch}, headers=internal_auth(suite))
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer
