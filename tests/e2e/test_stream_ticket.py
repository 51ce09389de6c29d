"""The stream from a browser, end to end through the gateway to the real processes (decision
0035): a ticket asked for with a bearer token opens ``GET /api/v1/stream`` with no
Authorization header, once, and resumes from ``last_event_id``; neither the gateway's output
nor feed's holds the ticket."""

from __future__ import annotations

import json
import uuid
from functools import partial

import httpx
import pytest

from tests.e2e.people import Person, until
from tests.processes import LIMITS, Running, eventually

pytestmark = pytest.mark.e2e

FROM_THE_START = f"{'0' * 32}.{'0' * 32}"


def _first_post(resp: httpx.Response) -> dict[str, str]:
    """The first ``post`` event of an open stream (the stream is left open until then)."""
    event: dict[str, str] = {}
    for line in resp.iter_lines():
        if not line:
            if event.get("event") == "post":
                return event
            event = {}
        elif not line.startswith(":") and ": " in line:
            name, value = line.split(": ", 1)
            event[name] = value
    raise AssertionError(f"the stream ended without a post: {event}")


def _access_lines(running: Running, request_id: str) -> dict[str, dict[str, object]] | None:
    """The access-log line of one request in the gateway and in feed, by service; None until
    both have written theirs."""
    lines = {}
    for line in list(running.output):
        if line.startswith("{") and request_id in line:
            entry = json.loads(line)
            if entry.get("logger") == "access":
                lines[entry["service"]] = entry
    return lines if lines.keys() >= {"gateway", "feed"} else None


def test_a_ticket_opens_the_stream_through_the_gateway_once_and_no_log_holds_it(running: Running) -> None:
    with httpx.Client(base_url=running.url(), timeout=30, limits=LIMITS) as client:
        author, reader = Person(client, running, "aurora"), Person(client, running, "orson")
        pro = reader.headers("professional")
        followed = author.ids["professional"]
        # feed learns of a new persona through identity's events: wait for it
        until(
            lambda: client.put(f"/api/v1/following/{followed}", headers=pro).status_code in (200, 201),
            "the reader follows the author",
        )
        written = client.post(
            "/api/v1/posts", json={"body": "Open house on Friday"}, headers=author.headers("professional")
        )
        assert written.status_code == 201, written.text

        answer = client.post("/api/v1/stream/tickets", headers=pro)
        assert answer.status_code == 201, answer.text
        assert answer.headers["cache-control"] == "no-store"
        ticket = answer.json()["ticket"]
        assert ticket.startswith("gst_")

        opened_id, again_id = uuid.uuid4().hex, uuid.uuid4().hex
        params = {"ticket": ticket, "last_event_id": FROM_THE_START}
        with client.stream(
            "GET", "/api/v1/stream", params=params, headers={"X-Request-ID": opened_id}
        ) as resp:
            assert resp.status_code == 200, resp.read()
            assert "authorization" not in {k.lower() for k in resp.request.headers}
            event = _first_post(resp)
        assert json.loads(event["data"])["id"] == written.json()["id"]
        assert event["id"]

        again = client.get("/api/v1/stream", params=params, headers={"X-Request-ID": again_id})
        assert again.status_code == 401, again.text
        assert again.headers["content-type"] == "application/problem+json"

    # every process has written its line about both requests; none holds the ticket
    for request_id, status in ((opened_id, 200), (again_id, 401)):
        found = eventually(partial(_access_lines, running, request_id), timeout=30)
        assert found, f"no access lines of {request_id}: {running.tail()}"
        assert {entry["status"] for entry in found.values()} == {status}
        assert {entry["path"] for entry in found.values()} == {"/api/v1/stream"}
    assert ticket not in "".join(running.output)
