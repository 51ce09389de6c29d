"""One integrator's failing or hanging endpoints never hold back another's webhooks: every
relay pass serves each endpoint that has something due, a bounded turn each, one request at a
time per endpoint, and an endpoint's turn ends at its first failure."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select
from sqlmodel import col

from services.identity.models import WebhookDelivery
from tests.helpers import admin, auth, person
from tests.suite import build_suite

HOOKS = {"webhook_allowed_hosts": ["127.0.0.1"], "webhook_allow_http": True}


class LoopbackReceiver:
    """A real HTTP server on 127.0.0.1 that answers ``status``, or never answers (``None``),
    and records the bodies it got and how many requests it held at once."""

    def __init__(self, status: int | None) -> None:
        self.status = status
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.most_at_once = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hooks"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            lines = [line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line]
            length = int({k.lower(): v for k, v in lines}.get("content-length", "0"))
            body = await reader.readexactly(length)
            if self.status is None:
                await reader.read()  # holds the request until the sender gives up
                return
            await asyncio.sleep(0.01)  # long enough for a second request to overlap, if any were sent
            self.bodies.append(json.loads(body))
            writer.write(f"HTTP/1.1 {self.status} X\r\ncontent-length: 0\r\n\r\n".encode())
            await writer.drain()
        finally:
            self.in_flight -= 1
            writer.close()


@asynccontextmanager
async def receivers(*statuses: int | None) -> AsyncIterator[list[LoopbackReceiver]]:
    started = [LoopbackReceiver(status) for status in statuses]
    for receiver in started:
        receiver.server = await asyncio.start_server(receiver._handle, "127.0.0.1", 0)
    try:
        yield started
    finally:
        for receiver in started:
            assert receiver.server is not None
            receiver.server.close()


async def _register(suite, token: str, url: str) -> str:
    resp = await suite.client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": ["post.*"]}, headers=auth(token)
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _post(suite, token: str, body: str) -> str:
    resp = await suite.client.post("/api/v1/posts", json={"body": body}, headers=auth(token))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _attempts(suite, endpoint_id: str) -> int:
    async with suite.identity.state.database.sessionmaker() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(WebhookDelivery.attempt_count), 0)).where(
                col(WebhookDelivery.endpoint_id) == uuid.UUID(endpoint_id)
            )
        )
    return int(total or 0)


async def test_a_healthy_endpoint_is_served_in_the_first_pass_despite_failing_ones(database_urls):
    hanging_costs = {"webhook_timeout_seconds": 2.0}  # one timeout: the hanging receiver's one attempt
    async with (
        build_suite(database_urls, identity=HOOKS | hanging_costs) as suite,
        receivers(500, 500, None, 204) as hosts,
    ):
        *failing, healthy = hosts
        root, _ = await admin(suite)
        bad = [await _register(suite, root, r.url) for r in failing]
        author, _ = await person(suite.client, "ada")
        await suite.deliver()
        for i in range(25):  # 75 older deliveries to the failing endpoints, more than a pass used to look at
            await _post(suite, author, f"early {i}")
        await suite.deliver()
        await _register(suite, root, healthy.url)
        late = [await _post(suite, author, f"late {i}") for i in range(3)]
        await suite.deliver()

        sent = await suite.identity.state.webhook_relay.deliver_once()

        assert sent == 3
        assert [b["subject"] for b in healthy.bodies] == late
        assert healthy.most_at_once == 1
        # each failing endpoint had one attempt in that pass: its first failure ended its turn
        assert [await _attempts(suite, endpoint) for endpoint in bad] == [1, 1, 1]


async def test_an_endpoint_gets_a_bounded_turn_per_pass_and_the_rest_the_next(database_urls):
    async with build_suite(database_urls, identity=HOOKS) as suite, receivers(204, 204) as (busy, quiet):
        root, _ = await admin(suite)
        await _register(suite, root, busy.url)
        author, _ = await person(suite.client, "ada")
        await suite.deliver()
        posts = [await _post(suite, author, f"busy {i}") for i in range(14)]
        await suite.deliver()
        await _register(suite, root, quiet.url)
        posts.append(await _post(suite, author, "for both"))
        await suite.deliver()

        relay = suite.identity.state.webhook_relay
        assert await relay.deliver_once() == 11  # ten for the busy endpoint, one for the quiet one
        assert [b["subject"] for b in quiet.bodies] == posts[-1:]
        assert await relay.deliver_once() == 5
        assert [b["subject"] for b in busy.bodies] == posts
        assert busy.most_at_once == 1
