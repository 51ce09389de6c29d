"""``GET /api/v1/stream``: a persona holds at most a few open event streams per process."""

from __future__ import annotations

import asyncio

import pytest

from tests.feed.support import people
from tests.helpers import auth
from tests.suite import build_suite

STREAM = "/api/v1/stream"


@pytest.fixture
async def suite(database_urls):
    feed = {"stream_max_seconds": 1.5, "stream_poll_seconds": 0.05, "stream_max_per_persona": 2}
    async with build_suite(database_urls, feed=feed) as built:
        yield built


async def _until_open(suite, count: int) -> None:
    """Waits until the feed process holds ``count`` open streams."""
    async with asyncio.timeout(5):
        while True:
            slots = getattr(suite.feed.state, "stream_slots", None)
            if slots is not None and sum(len(held) for held in slots.open.values()) == count:
                return
            await asyncio.sleep(0.01)


async def test_a_persona_past_its_open_streams_gets_429_with_retry_after(suite):
    (ada, _), (bob, _) = await people(suite, "ada", "bob")
    streams = [asyncio.create_task(suite.client.get(STREAM, headers=auth(ada))) for _ in range(2)]
    await _until_open(suite, 2)
    third = await suite.client.get(STREAM, headers=auth(ada))
    assert third.status_code == 429
    assert third.headers["content-type"] == "application/problem+json"
    assert 1 <= int(third.headers["retry-after"]) <= 2
    other = asyncio.create_task(suite.client.get(STREAM, headers=auth(bob)))
    assert [r.status_code for r in await asyncio.gather(*streams, other)] == [200, 200, 200]


async def test_a_stream_that_ends_gives_its_slot_back(suite):
    ((ada, _),) = await people(suite, "ada")
    first = await asyncio.gather(*(suite.client.get(STREAM, headers=auth(ada)) for _ in range(2)))
    assert [r.status_code for r in first] == [200, 200]
    assert (await suite.client.get(STREAM, headers=auth(ada))).status_code == 200
    await _until_open(suite, 0)
