"""Uploads and files through the production gateway, on real processes: a gateway started by
uvicorn, forwarding with aiohttp to the media stand-in (``tests.gateway.media_stub``, served
by uvicorn too) and checking tokens against a stub identity's keys (decision 0036).

The memory check reads the gateway process's peak resident size (``VmHWM``): a gateway that
read a 20 MB body whole would hold it at least once (twice while joining its chunks)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.identity.keys import SigningKey
from tests.gateway import media_stub
from tests.gateway.processes import Process, Stub, gateway, stub
from tests.processes import free_port, uvicorn
from tests.suite import AUDIENCE, ISSUER
from tests.tokens import claims, sign

pytestmark = pytest.mark.e2e
TIMEOUT = 2.0  # the gateway's upstream timeout here
CAP = 26_000_000  # the default upload cap
MB = 1_000_000


@dataclass
class World:
    url: str
    port: int
    gateway: Process
    media_url: str
    token: str

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def media_state(self) -> dict[str, Any]:
        state: dict[str, Any] = httpx.get(self.media_url + "/_state", timeout=5).json()
        return state

    def reset_media(self) -> None:
        httpx.post(self.media_url + "/_reset", timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    key = SigningKey.generate()
    jwks = tmp_path_factory.mktemp("jwks") / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.public_jwk]}))
    identity: Stub | None = None
    media: Process | None = None
    process: Process | None = None
    try:
        identity = stub("identity", jwks)
        media_port = free_port()
        media = uvicorn(
            "tests.gateway.media_stub:create_app",
            media_port,
            dict(os.environ),
            name="media stub",
            options=("--log-level", "warning"),
        )
        media_url = f"http://127.0.0.1:{media_port}"
        media.wait_until_answers(media_url + "/health/live")
        others = dict.fromkeys(("identity", "feed", "groups", "moderation", "records"), identity.url)
        process, url = gateway(
            {**others, "media": media_url},
            token_issuer=ISSUER,
            token_audience=AUDIENCE,
            upstream_timeout_seconds=str(TIMEOUT),
            rate_limit_enabled="false",
            log_level="ERROR",
        )
        port = int(url.rsplit(":", 1)[1])
        yield World(url, port, process, media_url, sign(key, claims()))
    finally:
        for running in (process, media, identity):
            if running is not None:
                running.stop()


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


def _payload(size: int) -> bytes:
    return hashlib.shake_256(b"twenty megabytes").digest(size)


def test_a_20_mb_upload_streams_through_without_the_gateway_holding_it(world):
    world.reset_media()
    with world.client(**world.bearer()) as client:
        warm = client.post("/api/v1/media", content=_payload(2 * MB))  # pools, buffers, code paths
        assert warm.status_code == 202, warm.text
        before = _peak_rss_kb(world.gateway.pid)
        data = _payload(20 * MB)
        resp = client.post("/api/v1/media", content=data, headers={"content-type": "multipart/form-data"})
        grown_kb = _peak_rss_kb(world.gateway.pid) - before
    assert resp.status_code == 202, resp.text
    assert resp.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert resp.headers["location"] == "/api/v1/media/m1"  # media's own address never leaves
    upload = world.media_state()["uploads"][-1]
    assert upload["complete"] is True
    assert upload["received"] == len(data)
    assert upload["content_length"] == str(len(data))  # media can refuse it by its length
    assert upload["chunks"] > 20  # it came in pieces, as they arrived
    assert grown_kb < 10_000, f"the gateway's peak memory grew by {grown_kb} kB for a 20 MB upload"


async def _raw_upload(world: World, head: str, chunks: Iterator[bytes] | None = None) -> tuple[str, int]:
    """Sends ``head`` then ``chunks`` (chunked encoding) until the gateway answers; returns the
    answer's status line and how many body bytes went out before it.

    A plain socket, not asyncio's streams: the gateway closes the connection after its answer
    with the client's bytes unread, so the client's next write meets a reset. The answer is
    still in the socket then, but a stream transport that fails a write closes its socket and
    loses it, depending on whether the loop read the answer or wrote first."""
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(("127.0.0.1", world.port))
    sock.setblocking(False)
    answer: asyncio.Task[bytes] | None = None
    sent = 0
    try:
        await loop.sock_sendall(sock, head.encode("latin-1"))
        answer = asyncio.create_task(_read_head(sock))
        for chunk in chunks or ():
            if answer.done():
                break
            try:
                await loop.sock_sendall(sock, f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except ConnectionError:
                break  # the gateway answered and closed: read its answer
            sent += len(chunk)
        status = (await asyncio.wait_for(answer, 30)).split(b"\r\n", 1)[0].decode()
    finally:
        if answer is not None:
            answer.cancel()
        sock.close()
    return status, sent


async def _read_head(sock: socket.socket) -> bytes:
    """The answer's head: what arrived up to the blank line (or up to the end, if it ends first)."""
    loop = asyncio.get_running_loop()
    received = b""
    while b"\r\n\r\n" not in received:
        piece = await loop.sock_recv(sock, 65536)
        if not piece:
            break
        received += piece
    return received


def _head(world: World, **headers: str) -> str:
    lines = ["POST /api/v1/media HTTP/1.1", "Host: gateway", f"Authorization: Bearer {world.token}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


async def test_an_upload_over_the_cap_is_413_declared_at_once_and_chunked_when_it_passes(world):
    world.reset_media()
    # declared: answered before a byte of the body is sent
    status, _ = await _raw_upload(world, _head(world, Content_Length=str(CAP + 1)))
    assert status.startswith("HTTP/1.1 413 "), status
    assert world.media_state()["requests"] == []

    # chunked: media sees the body break off, the client gets the 413 once it passed the cap
    def chunks() -> Iterator[bytes]:
        piece = b"c" * 256 * 1024
        for _ in range(CAP // len(piece) + 40):
            yield piece

    status, sent = await _raw_upload(world, _head(world, Transfer_Encoding="chunked"), chunks())
    assert status.startswith("HTTP/1.1 413 "), status
    assert sent > CAP
    (upload,) = world.media_state()["uploads"]
    assert upload["complete"] is False
    assert upload["received"] <= CAP


async def test_a_slow_upload_may_take_longer_than_the_timeout_but_not_stall_for_it(world):
    """The timeout counts from the last chunk passed on: a large file from a slow client is not
    a 504, and a client that stops sending gets a 408."""
    world.reset_media()

    async def slowly() -> Any:
        for _ in range(6):
            yield b"s" * 1000
            await asyncio.sleep(TIMEOUT / 3)  # the client's pace is what is tested

    async with httpx.AsyncClient(base_url=world.url, headers=world.bearer(), timeout=30) as client:
        started = time.monotonic()
        resp = await client.post("/api/v1/media", content=slowly())
        assert resp.status_code == 202, resp.text
        assert time.monotonic() - started > TIMEOUT
        assert world.media_state()["uploads"][-1]["received"] == 6000

    # a client that sends one chunk, then nothing: the gateway answers once the timeout passed
    started = time.monotonic()
    status, _ = await _raw_upload(world, _head(world, Transfer_Encoding="chunked"), iter([b"s" * 1000]))
    assert status.startswith("HTTP/1.1 408 "), status
    assert time.monotonic() - started >= TIMEOUT
    stalled = world.media_state()["uploads"][-1]
    assert stalled["complete"] is False  # media saw the body break off
    assert stalled["received"] == 1000


def test_files_ranges_and_signed_links_through_the_production_client(world):
    world.reset_media()
    size = len(media_stub.FILE)
    with world.client(**world.bearer()) as client:
        whole = client.get("/api/v1/media/m1/file")
        assert whole.status_code == 200
        assert whole.content == media_stub.FILE
        assert whole.headers["content-length"] == str(size)
        part = client.get("/api/v1/media/m1/preview", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206
        assert part.content == media_stub.FILE[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{size}"
        cached = client.get("/api/v1/media/m1/file", headers={"If-None-Match": media_stub.ETAG})
        assert cached.status_code == 304
        assert cached.content == b""
        beyond = client.get("/api/v1/media/m1/file", headers={"Range": f"bytes={size + 5}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{size}"
    reached = len(world.media_state()["requests"])
    assert reached == 4

    signed = {"expires": "1999999999", "signature": media_stub.GOOD_SIGNATURE}
    with world.client() as anonymous:
        ok = anonymous.get("/api/v1/media/m1/file", params=signed)
        assert ok.status_code == 200
        assert ok.content == media_stub.FILE
        for params in ({"expires": "1999999999"}, {"signature": "good"}, {}):
            refused = anonymous.get("/api/v1/media/m1/file", params=params)
            assert refused.status_code == 401, params
        assert anonymous.get("/api/v1/media/m1", params=signed).status_code == 401
    assert len(world.media_state()["requests"]) == reached + 1


async def test_an_upload_that_expects_100_continue_is_asked_for_its_body(world):
    """curl and others send ``Expect: 100-continue`` before a large body and wait: the gateway
    asks for the body once media does, and the upload goes through."""
    world.reset_media()
    data = _payload(2 * MB)
    reader, writer = await asyncio.open_connection("127.0.0.1", world.port)
    try:
        writer.write(_head(world, Content_Length=str(len(data)), Expect="100-continue").encode("latin-1"))
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        writer.write(data)
        await writer.drain()
        final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert final.startswith(b"HTTP/1.1 202 "), final
    finally:
        writer.close()
    upload = world.media_state()["uploads"][-1]
    assert upload["complete"] is True
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
