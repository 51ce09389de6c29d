"""``GET /api/v1/stream``: server-sent events of the home timeline and notifications, resumable
with Last-Event-ID."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.feed.support import follow, people, post
from tests.helpers import auth
from tests.suite import build_suite

STREAM = "/api/v1/stream"


@pytest.fixture
async def suite(database_urls):
    """Streams that end after a short while, as the in-process transport reads them whole."""
    feed = {"stream_max_seconds": 2.0, "stream_poll_seconds": 0.05}
    async with build_suite(database_urls, feed=feed) as built:
        yield built


def parse(text: str) -> list[dict[str, str]]:
    """The events of a stream that ran to its end: the posts and notifications, once the last
    event is checked to be ``reconnect`` for the stream's timeout, without an id."""
    *events, last = parse_all(text)
    assert last == {"event": "reconnect", "data": '{"reason":"timeout"}'}
    return events


def parse_all(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "event" in fields:
            events.append(fields)
    return events


async def test_stream_sends_new_home_posts_and_notifications(suite):
    (ada, _), (bob, bob_id), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    await follow(suite.client, ada, bob_id)
    await post(suite.client, bob, "before the stream")

    async def later() -> None:
        await asyncio.sleep(0.2)
        await post(suite.client, bob, "live @ada")
        await post(suite.client, cyd, "not followed")

    resp, _ = await asyncio.gather(suite.client.get(STREAM, headers=auth(ada)), later())
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = parse(resp.text)
    assert [e["event"] for e in events] == ["post", "notification"]
    assert json.loads(events[0]["data"])["body"] == "live @ada"
    assert json.loads(events[1]["data"])["kind"] == "mention"
    assert all(e["id"] for e in events)


async def test_stream_resumes_after_last_event_id(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)

    async def later() -> None:
        await asyncio.sleep(0.1)
        await post(suite.client, bob, "one")

    first, _ = await asyncio.gather(suite.client.get(STREAM, headers=auth(ada)), later())
    last_id = parse(first.text)[-1]["id"]
    await post(suite.client, bob, "two")
    await post(suite.client, bob, "three @ada")
    resumed = await suite.client.get(STREAM, headers={**auth(ada), "Last-Event-ID": last_id})
    events = parse(resumed.text)
    assert [(e["event"], json.loads(e["data"]).get("body")) for e in events] == [
        ("post", "two"),
        ("post", "three @ada"),
        ("notification", None),
    ]
    again = await suite.client.get(STREAM, headers={**auth(ada), "Last-Event-ID": events[-1]["id"]})
    assert parse(again.text) == []


async def test_stream_refuses_bad_event_ids_and_missing_tokens(suite):
    ((ada, _),) = await people(suite, "ada")
    for bad in ("garbage", "1.2", "x" * 101, "0" * 32):
        resp = await suite.client.get(STREAM, headers={**auth(ada), "Last-Event-ID": bad})
        assert resp.status_code in (400, 422), bad
        assert resp.headers["content-type"] == "application/problem+json"
    assert (await suite.client.get(STREAM)).status_code == 401


async def test_stream_sends_announcements_of_the_context(suite):
    from datetime import UTC, datetime, timedelta

    from kit.ids import new_id
    from tests.feed.support import token_with_roles

    (ada, _), (_, comms_id) = await people(suite, "ada", "comms")
    comms = token_with_roles(suite, comms_id, "communications")
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    # The stream is opened from a position taken before the post, as a client resuming does, so
    # that how soon a busy machine starts serving it does not decide what it sends.
    start = new_id().hex
    await post(suite.client, comms, "all hands", pinned_until=until)
    resp = await suite.client.get(STREAM, headers={**auth(ada), "Last-Event-ID": f"{start}.{start}"})
    assert [json.loads(e["data"])["body"] for e in parse(resp.text)] == ["all hands"]
