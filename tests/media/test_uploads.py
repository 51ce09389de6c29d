"""Uploading (decision 0036): the multipart body parsed as it streams, its limits (the file
limit and the persona's quota, before a byte is read when Content-Length says so, mid-stream
otherwise), malformed and interrupted bodies, and nothing left behind by any failure."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select
from sqlmodel import col

from services.media.models import Blob, Media
from services.media.storage import spool_dir
from tests.helpers import auth
from tests.media.samples import png_bytes
from tests.media.support import media_client, people, ready, suite_with, upload, upload_response

BOUNDARY = "media-test-boundary"


def body_of(*parts: tuple[str, bytes, str | None]) -> bytes:
    """A multipart body of (name, data, filename) parts."""
    out = b""
    for name, data, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def multipart_headers(token: str) -> dict[str, str]:
    return {**auth(token), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def nothing_left(suite: Any) -> None:
    """No media row, no stored key, nothing in the spool."""
    async with suite.media.state.database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Media)) == 0
        assert await session.scalar(select(func.count()).select_from(Blob)) == 0
    assert [k async for k in suite.media.state.storage.keys("")] == []
    assert list(spool_dir(suite.media.state.settings).iterdir()) == []


class Body:
    """A request body sent in chunks, recording how much of it was asked for."""

    def __init__(self, data: bytes, chunk: int = 1024) -> None:
        self.data = data
        self.chunk = chunk
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), self.chunk):
            piece = self.data[start : start + self.chunk]
            self.sent += len(piece)
            yield piece


async def test_an_upload_answers_202_processing_then_becomes_ready(suite):
    ((token, _),) = await people(suite, "ann")
    data = png_bytes(64, 48)

    resp = await upload_response(suite, token, data, "chart.png", "image/png", "A bar chart")

    assert resp.status_code == 202, resp.text
    media = resp.json()
    assert resp.headers["location"] == f"/api/v1/media/{media['id']}"
    assert media["status"] == "processing" and media["reason"] is None
    assert media["filename"] == "chart.png" and media["description"] == "A bar chart"
    assert media["size"] == len(data) and media["sha256"] == hashlib.sha256(data).hexdigest()
    assert media["url"] is None and media["preview_url"] is None and media["preview"] is None
    assert media["created_at"]
    await ready(suite, media["id"])
    resp = await suite.client.get(f"/api/v1/media/{media['id']}", headers=auth(token))
    done = resp.json()
    assert done["status"] == "ready" and done["media_type"] == "image"
    assert done["content_type"] == "image/png" and (done["width"], done["height"]) == (64, 48)
    assert done["preview"]["width"] <= 640 and done["preview"]["content_type"].startswith("image/")
    assert done["url"].startswith(f"/api/v1/media/{media['id']}/file?expires=")
    assert done["preview_url"].startswith(f"/api/v1/media/{media['id']}/preview?expires=")


async def test_the_uploaders_list_is_newest_first_and_pages(suite):
    (token, _), (other, _) = await people(suite, "bo", "cy")
    ids = [(await upload(suite, token, png_bytes(), f"{n}.png", "image/png"))["id"] for n in range(3)]
    await upload(suite, other, png_bytes(), "theirs.png", "image/png")

    first = await suite.client.get("/api/v1/media", params={"limit": 2}, headers=auth(token))
    assert first.status_code == 200, first.text
    page = first.json()
    assert [m["id"] for m in page["items"]] == ids[::-1][:2]
    assert page["next_cursor"] and 'rel="next"' in first.headers["link"]
    second = await suite.client.get(
        "/api/v1/media", params={"limit": 2, "cursor": page["next_cursor"]}, headers=auth(token)
    )
    assert [m["id"] for m in second.json()["items"]] == [ids[0]]
    assert second.json()["next_cursor"] is None
    bad = await suite.client.get("/api/v1/media", params={"cursor": "nope"}, headers=auth(token))
    assert bad.status_code == 400


async def test_an_upload_needs_a_persona_token(suite):
    async with media_client(suite) as client:
        resp = await client.post(
            "/api/v1/media", content=body_of(("file", b"hello", "a.txt")), headers=multipart_headers("x")
        )
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    await nothing_left(suite)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "where"),
    [
        (body_of(("description", b"no file", None)), None, 422, "body.file"),
        (body_of(("file", b"", "empty.txt")), None, 422, "body.file"),
        (body_of(("file", b"one", "a.txt"), ("file", b"two", "b.txt")), None, 422, "body.file"),
        (body_of(("file", b"x", "a.txt"), ("title", b"t", None)), None, 422, "body.title"),
        (body_of(("file", b"x", "a.txt"), ("description", b"  ", None)), None, 422, "body.description"),
        (body_of(("file", b"x", "a.txt"), ("description", b"\x00bad", None)), None, 422, "body.description"),
        (body_of(("file", b"x", "a.txt"), ("description", b"\xff\xfe", None)), None, 422, "body.description"),
        (body_of(("file", b"x", "a.txt"), ("description", b"d" * 1501, None)), None, 422, "body.description"),
        (body_of(("file", b"x", "a.txt"))[:-20], None, 400, None),  # no closing boundary
        (b"this is not multipart at all", None, 400, None),
        (body_of(("file", b"x", "a.txt")), "application/json", 415, None),
        (body_of(("file", b"x", "a.txt")), "multipart/form-data", 400, None),  # no boundary
    ],
)
async def test_a_malformed_upload_is_a_clear_problem_and_leaves_nothing(
    suite, body, content_type, status, where
):
    ((token, _),) = await people(suite, "di")
    headers = multipart_headers(token)
    if content_type is not None:
        headers["Content-Type"] = content_type

    resp = await suite.client.post("/api/v1/media", content=body, headers=headers)

    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    if where is not None:
        assert where in [e["location"] for e in resp.json()["errors"]]
    await nothing_left(suite)


async def test_a_file_s_name_is_kept_safe(suite):
    ((token, _),) = await people(suite, "ed")
    body = body_of(("file", b"hello", "../../etc/\x07pass wd.txt"))
    resp = await suite.client.post("/api/v1/media", content=body, headers=multipart_headers(token))
    assert resp.status_code == 202, resp.text
    assert resp.json()["filename"] == "pass wd.txt"
    unnamed = await suite.client.post(
        "/api/v1/media", content=body_of(("file", b"hello", "")), headers=multipart_headers(token)
    )
    assert unnamed.status_code == 202 and unnamed.json()["filename"] == "file"


async def test_a_large_content_length_is_refused_before_a_byte_is_read(database_urls):
    async with suite_with(database_urls, max_file_bytes=4096, upload_envelope_bytes=4096) as suite:
        ((token, _),) = await people(suite, "fi")
        data = body_of(("file", b"x" * 100_000, "big.bin"))
        body = Body(data)
        headers = {**multipart_headers(token), "Content-Length": str(len(data))}

        async with media_client(suite) as client:
            resp = await client.post("/api/v1/media", content=body, headers=headers)

        assert resp.status_code == 413, resp.text
        assert resp.json()["type"].endswith("/file-too-large")
        assert body.sent == 0
        await nothing_left(suite)


async def test_a_file_over_the_limit_is_cut_off_mid_stream(database_urls):
    async with suite_with(database_urls, max_file_bytes=4096, upload_envelope_bytes=4096) as suite:
        ((token, _),) = await people(suite, "gi")
        body = Body(body_of(("file", b"x" * 100_000, "big.bin")))  # chunked: no Content-Length

        async with media_client(suite) as client:
            resp = await client.post("/api/v1/media", content=body, headers=multipart_headers(token))

        assert resp.status_code == 413, resp.text
        assert resp.json()["type"].endswith("/file-too-large")
        assert resp.headers["connection"] == "close"
        assert body.sent < 10_000  # refused as soon as it passed the limit
        await nothing_left(suite)
        # Exactly the limit is fine.
        ok = await upload_response(suite, token, b"y" * 4096, "fits.bin")
        assert ok.status_code == 202, ok.text


async def test_the_quota_is_checked_before_reading_and_mid_stream(database_urls):
    async with suite_with(
        database_urls, quota_bytes=10_000, max_file_bytes=50_000, upload_envelope_bytes=4096
    ) as suite:
        ((token, _), (other, _)) = await people(suite, "hu", "iv")
        kept = await upload(suite, token, b"a" * 6000, "first.bin")
        async with media_client(suite) as client:
            # Content-Length already says the file cannot fit what is left (4000 bytes).
            data = body_of(("file", b"b" * 20_000, "second.bin"))
            body = Body(data)
            headers = {**multipart_headers(token), "Content-Length": str(len(data))}
            resp = await client.post("/api/v1/media", content=body, headers=headers)
            assert resp.status_code == 413 and resp.json()["type"].endswith("/quota-exceeded")
            assert body.sent == 0
            # A chunked body passes it as it arrives.
            body = Body(body_of(("file", b"c" * 5000, "third.bin")))
            resp = await client.post("/api/v1/media", content=body, headers=multipart_headers(token))
            assert resp.status_code == 413 and resp.json()["type"].endswith("/quota-exceeded")
            assert body.sent < len(body.data)
        # What fits, fits; another persona's quota is its own.
        assert (await upload_response(suite, token, b"d" * 4000, "fits.bin")).status_code == 202
        assert (await upload_response(suite, other, b"e" * 9000, "theirs.bin")).status_code == 202
        async with suite.media.state.database.sessionmaker() as session:
            names = set((await session.scalars(select(col(Media.filename)))).all())
        assert names == {"first.bin", "fits.bin", "theirs.bin"} and kept["filename"] == "first.bin"
        # A rejected upload holds no quota: the bytes are gone.
        async with suite.media.state.database.sessionmaker() as session, session.begin():
            row = await session.get(Media, uuid.UUID(kept["id"]))
            row.status = "rejected"
        assert (await upload_response(suite, token, b"f" * 5000, "after.bin")).status_code == 202


async def test_an_interrupted_upload_leaves_nothing_behind(suite):
    """The client goes away mid-body: the ASGI server tells the app with ``http.disconnect``
    (what uvicorn does when the connection closes)."""
    ((token, _),) = await people(suite, "jo")
    data = body_of(("file", b"z" * 50_000, "cut.bin"))
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": data[:20_000], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in multipart_headers(token).items()]
    headers.append((b"content-length", str(len(data)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/media",
        "raw_path": b"/api/v1/media",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"media"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("media", 80),
    }

    await suite.media(scope, receive, send)

    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert body["type"].endswith("/upload-interrupted")
    await nothing_left(suite)


async def test_an_upload_cut_off_on_a_real_connection_leaves_nothing_behind(suite):
    """The same over a socket: media served by uvicorn, a client that sends half its body and
    closes the connection."""
    ((token, _),) = await people(suite, "jy")
    handled = asyncio.Event()
    statuses: list[int] = []

    async def media(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            await send(message)

        try:
            await suite.media(scope, receive, sending)
        finally:
            handled.set()

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(media, lifespan="off", log_config=None))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    data = body_of(("file", b"w" * 200_000, "cut.bin"))
    head = (
        f"POST /api/v1/media HTTP/1.1\r\nHost: media\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + data[:100_000])
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    await asyncio.wait_for(handled.wait(), timeout=30)
    server.should_exit = True
    await serving

    assert statuses == [400]  # upload-interrupted, to no one
    await nothing_left(suite)


async def test_a_failing_store_leaves_nothing_behind(suite, monkeypatch):
    ((token, _),) = await people(suite, "ka")
    storage = suite.media.state.storage
    real_put = storage.put

    async def broken(key, source, content_type):
        await real_put(key, source, content_type)
        raise OSError("disk full")

    monkeypatch.setattr(storage, "put", broken)
    resp = await upload_response(suite, token, b"some bytes", "doomed.txt", "text/plain")
    assert resp.status_code == 503 and resp.headers["retry-after"]
    monkeypatch.undo()
    await nothing_left(suite)


async def test_the_upload_route_alone_escapes_the_body_limit(database_urls):
    async with suite_with(database_urls, max_body_size=2048) as suite:
        ((token, _),) = await people(suite, "lu")
        big = b"q" * 50_000
        assert (await upload_response(suite, token, big, "big.bin")).status_code == 202
        async with media_client(suite) as client:
            resp = await client.post(
                "/internal/media/attachments",
                content=b"{" + b" " * 5000 + b"}",
                headers={"Content-Type": "application/json"},
            )
        assert resp.status_code == 413


async def test_a_file_of_megabytes_goes_through_the_gateway_whole(suite):
    ((token, _),) = await people(suite, "mu")
    data = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MiB, over every JSON body limit

    created = await upload(suite, token, data, "big.bin")
    await ready(suite, created["id"], expect="rejected")  # not an accepted type: but received whole

    assert created["size"] == len(data) and created["sha256"] == hashlib.sha256(data).hexdigest()
