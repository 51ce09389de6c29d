"""One-time stream tickets (decision 0035): ``POST /api/v1/stream/tickets`` gives a random value
that opens ``GET /api/v1/stream?ticket=`` once, within 30 seconds, with no Authorization header,
as a browser's ``EventSource`` must; ``last_event_id`` resumes as the header does; a stream
ends with a ``reconnect`` event, and when the token behind it expires, resuming from the last
event misses nothing. Every request goes through the gateway, which lets the ticketed stream
through without a bearer."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col

from kit.timeutil import utcnow
from services.feed.models import StoredTicket
from services.feed.streams import ticket_digest
from tests.feed.support import follow, people, post
from tests.helpers import admin, auth, with_personal
from tests.tokens import claims, sign

STREAM = "/api/v1/stream"
TICKETS = "/api/v1/stream/tickets"
FROM_THE_START = f"{'0' * 32}.{'0' * 32}"


@pytest.fixture
async def suite(database_urls):
    """Streams that end after a short while, as the in-process transport reads them whole."""
    from tests.suite import build_suite

    feed = {"stream_max_seconds": 1.0, "stream_poll_seconds": 0.05}
    async with build_suite(database_urls, feed=feed) as built:
        yield built


def parse(text: str) -> list[dict[str, str]]:
    """Every event of a stream's text, comments left out; lines end at "\\n" only."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "event" in fields:
            events.append(fields)
    return events


async def ticket_of(client: httpx.AsyncClient, token: str) -> str:
    resp = await client.post(TICKETS, headers=auth(token))
    assert resp.status_code == 201, resp.text
    ticket: str = resp.json()["ticket"]
    return ticket


async def by_ticket(client: httpx.AsyncClient, ticket: str, **params: str) -> httpx.Response:
    """The stream opened as a browser does: the ticket in the query, no Authorization header."""
    return await client.get(STREAM, params={"ticket": ticket, **params})


def problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    return body


async def test_a_ticket_opens_the_stream_once_and_it_delivers_a_post(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    resp = await suite.client.post(TICKETS, headers=auth(ada))
    assert resp.status_code == 201, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert set(body) == {"ticket", "expires_in"}
    assert body["ticket"].startswith("gst_") and len(body["ticket"]) <= 100
    assert body["expires_in"] == 30
    ticket = body["ticket"]
    await post(suite.client, bob, "live for the browser")

    opened = await by_ticket(suite.client, ticket, last_event_id=FROM_THE_START)
    assert opened.status_code == 200, opened.text
    assert opened.headers["content-type"].startswith("text/event-stream")
    events = parse(opened.text)
    assert [e["event"] for e in events] == ["post", "reconnect"]
    assert json.loads(events[0]["data"])["body"] == "live for the browser"
    assert json.loads(events[1]["data"]) == {"reason": "timeout"}
    assert "id" in events[0] and "id" not in events[1]

    again = problem(await by_ticket(suite.client, ticket), 401)
    assert "ticket" in again["detail"]


async def test_of_two_requests_with_one_ticket_only_one_opens_the_stream(suite):
    ((ada, _),) = await people(suite, "ada")
    ticket = await ticket_of(suite.client, ada)
    answers = await asyncio.gather(by_ticket(suite.client, ticket), by_ticket(suite.client, ticket))
    assert sorted(r.status_code for r in answers) == [200, 401]


async def test_an_expired_ticket_an_unknown_one_and_a_malformed_one_are_refused(suite):
    ((ada, _),) = await people(suite, "ada")
    expired, fresh = await ticket_of(suite.client, ada), await ticket_of(suite.client, ada)
    async with suite.feed.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(StoredTicket)
            .where(col(StoredTicket.digest) == ticket_digest(expired))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    problem(await by_ticket(suite.client, expired), 401)
    for unknown in ("gst_" + "A" * 43, "", "not-a-ticket"):
        problem(await by_ticket(suite.client, unknown), 401)
    problem(await by_ticket(suite.client, "gst_" + "A" * 97), 422)  # over 100 characters
    for hostile in ("gst_%00", "gst_%ED%A0%80", "gst_%FF"):  # NUL, a lone surrogate, not UTF-8
        resp = await suite.client.get(f"{STREAM}?ticket={hostile}")
        assert resp.status_code in (401, 422), (hostile, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
    # a ticket with a bearer token too is no browser's request, and spends nothing
    both = await suite.client.get(STREAM, params={"ticket": fresh}, headers=auth(ada))
    assert problem(both, 400)["detail"] == "Send a bearer token or a stream ticket, not both."
    assert (await by_ticket(suite.client, fresh)).status_code == 200


async def test_a_ticket_is_stored_as_a_digest_and_swept_once_expired(suite):
    ((ada, _),) = await people(suite, "ada")
    old, kept = await ticket_of(suite.client, ada), await ticket_of(suite.client, ada)
    database = suite.feed.state.database
    async with database.sessionmaker() as session, session.begin():
        rows = (await session.execute(select(StoredTicket))).scalars().all()
        assert {row.digest for row in rows} == {ticket_digest(old), ticket_digest(kept)}
        assert not any(old in str(row.model_dump()) or kept in str(row.model_dump()) for row in rows)
        await session.execute(
            update(StoredTicket)
            .where(col(StoredTicket.digest) == ticket_digest(old))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    removed = await suite.feed.state.housekeeper.sweep()
    assert removed["stream tickets"] == 1
    async with database.sessionmaker() as session:
        left = (await session.execute(select(col(StoredTicket.digest)))).scalars().all()
    assert left == [ticket_digest(kept)]


async def test_a_ticket_of_a_persona_suspended_since_opens_nothing(suite):
    suite.feed.state.principal_check.ttl = 0  # each request reads the replica
    root, _ = await admin(suite)
    ((ada, _),) = await people(suite, "ada")
    ticket, spare = await ticket_of(suite.client, ada), await ticket_of(suite.client, ada)
    assert (await by_ticket(suite.client, spare)).status_code == 200
    account_id = (await suite.client.get("/api/v1/me", headers=auth(ada))).json()["account_id"]
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"status": "suspended", "reason": "Investigation of a reported leak."},
        headers=auth(root),
    )
    assert resp.status_code == 200, resp.text
    await suite.deliver()
    assert "no longer active" in problem(await by_ticket(suite.client, ticket), 401)["detail"]


async def test_only_a_personas_token_gets_a_ticket_and_never_one_that_outlives_it(suite):
    (_, ada_id), (_, bob_id) = await people(suite, "ada", "bob")
    problem(await suite.client.post(TICKETS), 401)
    integrator = sign(suite.keys.active, claims("reports-bot", ctx=None, client_id="reports-bot"))
    problem(await suite.client.post(TICKETS, headers=auth(integrator)), 403)
    short = sign(suite.keys.active, claims(ada_id, exp=int(time.time()) + 10))
    resp = await suite.client.post(TICKETS, headers=auth(short))
    assert resp.status_code == 201, resp.text
    assert 8 <= resp.json()["expires_in"] <= 10
    async with suite.feed.state.database.sessionmaker() as session:
        row = await session.get(StoredTicket, ticket_digest(resp.json()["ticket"]))
    assert row is not None and row.persona_id == uuid.UUID(ada_id)
    assert row.expires_at <= row.token_expires_at
    # a token in its verification leeway, expired already, gets none
    expired = sign(suite.keys.active, claims(bob_id, iat=int(time.time()) - 20, exp=int(time.time()) - 5))
    problem(await suite.client.post(TICKETS, headers=auth(expired)), 401)
    assert (await suite.client.get("/api/v1/notifications", headers=auth(expired))).status_code == 200


async def test_a_personal_tokens_ticket_opens_the_personal_personas_stream(suite):
    ada = await with_personal(suite.client, "ada")
    bob = await with_personal(suite.client, "bob")
    await suite.deliver()
    await follow(suite.client, ada["personal"], bob["personal_id"])
    await follow(suite.client, ada["pro"], bob["pro_id"])
    ticket = await ticket_of(suite.client, ada["personal"])
    await post(suite.client, bob["pro"], "at work")
    await post(suite.client, bob["personal"], "at home")

    opened = await by_ticket(suite.client, ticket, last_event_id=FROM_THE_START)
    assert opened.status_code == 200, opened.text
    posts = [json.loads(e["data"]) for e in parse(opened.text) if e["event"] == "post"]
    assert [(p["body"], p["author"]["id"]) for p in posts] == [("at home", bob["personal_id"])]


async def test_last_event_id_in_the_query_resumes_and_the_header_wins_over_it(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    await post(suite.client, bob, "one")
    first = await suite.client.get(STREAM, params={"last_event_id": FROM_THE_START}, headers=auth(ada))
    one = parse(first.text)[0]
    assert json.loads(one["data"])["body"] == "one"
    await post(suite.client, bob, "two")
    await post(suite.client, bob, "three")

    def bodies(resp: httpx.Response) -> list[str]:
        assert resp.status_code == 200, resp.text
        return [json.loads(e["data"])["body"] for e in parse(resp.text) if e["event"] == "post"]

    ticket = await ticket_of(suite.client, ada)
    assert bodies(await by_ticket(suite.client, ticket, last_event_id=one["id"])) == ["two", "three"]
    resumed = await suite.client.get(STREAM, params={"last_event_id": one["id"]}, headers=auth(ada))
    assert bodies(resumed) == ["two", "three"]
    two = parse(resumed.text)[0]["id"]
    both = await suite.client.get(
        STREAM, params={"last_event_id": one["id"]}, headers={**auth(ada), "Last-Event-ID": two}
    )
    assert bodies(both) == ["three"]
    problem(await suite.client.get(STREAM, params={"last_event_id": "garbage"}, headers=auth(ada)), 400)


async def test_a_stream_whose_token_expires_says_reconnect_and_resuming_misses_nothing(suite):
    settings = suite.feed.state.settings
    settings.stream_max_seconds = 60.0  # the token's expiry comes first
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    short = sign(suite.keys.active, claims(ada_id, exp=int(time.time()) + 4))
    ticket = await ticket_of(suite.client, short)

    async def later() -> None:
        await asyncio.sleep(0.3)
        await post(suite.client, bob, "before the expiry")

    started = time.monotonic()
    opened, _ = await asyncio.gather(by_ticket(suite.client, ticket), later())
    assert opened.status_code == 200, opened.text
    assert time.monotonic() - started < 10  # it ended at the expiry, not after a minute
    events = parse(opened.text)
    assert [e["event"] for e in events] == ["post", "reconnect"]
    assert json.loads(events[-1]["data"]) == {"reason": "token-expired"}
    assert "id" not in events[-1]
    last_id = events[0]["id"]

    await post(suite.client, bob, "after the expiry")  # while the reader has no stream
    settings.stream_max_seconds = 1.0
    fresh = await ticket_of(suite.client, ada)  # a new token, a new ticket
    resumed = await by_ticket(suite.client, fresh, last_event_id=last_id)
    assert resumed.status_code == 200, resumed.text
    events = parse(resumed.text)
    assert [(e["event"], json.loads(e["data"]).get("body")) for e in events] == [
        ("post", "after the expiry"),
        ("reconnect", None),
    ]
    assert json.loads(events[-1]["data"]) == {"reason": "timeout"}


async def test_an_apps_read_only_token_gets_a_ticket_that_keeps_its_app_and_scope(suite):
    ((_, ada_id),) = await people(suite, "ada")
    reading = sign(suite.keys.active, claims(ada_id, azp="notes-app", scope="read"))
    refused = await suite.client.post("/api/v1/posts", json={"body": "hello"}, headers=auth(reading))
    assert problem(refused, 403)["type"].endswith("insufficient-scope")
    ticket = await ticket_of(suite.client, reading)
    async with suite.feed.state.database.sessionmaker() as session:
        row = await session.get(StoredTicket, ticket_digest(ticket))
    assert row is not None and (row.app_id, row.scope) == ("notes-app", "read")
    assert (await by_ticket(suite.client, ticket)).status_code == 200
