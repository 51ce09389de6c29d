"""Upstream faults, with real processes: a gateway started by uvicorn in front of stub services
that are stopped, stalled, killed or made to answer garbage (docs/threats.md F1-F4, I1, X1)."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from services.identity.keys import SigningKey
from tests.gateway.processes import Process, Stub, gateway, stub
from tests.suite import AUDIENCE, ISSUER
from tests.tokens import claims, sign

pytestmark = pytest.mark.e2e
TIMEOUT = 1.0  # the gateway's upstream timeout in these tests
MAX_RESPONSE = 5_000_000


@dataclass
class World:
    url: str
    gateway: Process
    stubs: dict[str, Stub]
    headers: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=15)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    key = SigningKey.generate()
    jwks = tmp_path_factory.mktemp("jwks") / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.public_jwk]}))
    stubs: dict[str, Stub] = {}
    process = None
    try:
        for name in ("identity", "feed", "groups", "moderation", "records", "media"):
            stubs[name] = stub(name, jwks if name == "identity" else None)
        process, url = gateway(
            {name: s.url for name, s in stubs.items()},
            token_issuer=ISSUER,
            token_audience=AUDIENCE,
            upstream_timeout_seconds=str(TIMEOUT),
            upstream_max_response_bytes=str(MAX_RESPONSE),
            rate_limit_enabled="false",
            log_level="ERROR",
        )
        token = sign(key, claims())
        yield World(url, process, stubs, {"Authorization": f"Bearer {token}"})
    finally:
        if process is not None:
            process.stop()
        for s in stubs.values():
            s.stop()


def _is_problem(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status
    assert "Traceback" not in resp.text
    assert "hunter2" not in resp.text


def test_answers_pass_through_when_upstreams_are_healthy(world):
    with world.client() as client:
        resp = client.get("/api/v1/posts/ok")
        assert resp.status_code == 200
        assert resp.json() == {"ok": True, "service": "feed"}
        assert client.get("/api/v1/groups/ok").json()["service"] == "groups"
        assert client.get("/api/v1/moderation/ok").json()["service"] == "moderation"


def test_a_refused_connection_is_503_with_retry_after_while_other_services_answer(world):
    feed = world.stubs["feed"]
    feed.stop()
    try:
        with world.client() as client:
            started = time.monotonic()
            resp = client.get("/api/v1/posts/ok")
            elapsed = time.monotonic() - started
            _is_problem(resp, 503)
            assert int(resp.headers["retry-after"]) > 0
            assert elapsed < TIMEOUT
            assert client.get("/api/v1/groups/ok").status_code == 200
    finally:
        feed.start()


def test_a_stopped_upstream_is_504_within_the_timeout_while_other_services_answer(world):
    feed = world.stubs["feed"]
    feed.signal(signal.SIGSTOP)
    results: list[tuple[int, float]] = []

    def call_feed() -> None:
        with world.client() as client:
            started = time.monotonic()
            resp = client.get("/api/v1/posts/ok")
            results.append((resp.status_code, time.monotonic() - started))
            _is_problem(resp, 504)

    try:
        threads = [threading.Thread(target=call_feed) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        with world.client() as client:  # while feed's requests hang
            started = time.monotonic()
            assert client.get("/api/v1/groups/ok").status_code == 200
            assert time.monotonic() - started < TIMEOUT / 2
        for thread in threads:
            thread.join(timeout=10)
    finally:
        feed.signal(signal.SIGCONT)
    assert [status for status, _ in results] == [504] * 4
    assert all(TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.0 for _, elapsed in results), results


def test_an_upstream_that_never_answers_is_504_within_the_timeout(world):
    with world.client() as client:
        started = time.monotonic()
        resp = client.get("/api/v1/posts/slow")
        elapsed = time.monotonic() - started
    _is_problem(resp, 504)
    assert elapsed < TIMEOUT + 1.0


@pytest.mark.parametrize("fault", ["html500", "truncated", "garbage", "badjson", "big"])
def test_a_broken_answer_is_a_502_problem_that_leaks_nothing(world, fault):
    with world.client() as client:
        started = time.monotonic()
        resp = client.get(f"/api/v1/posts/{fault}")
        elapsed = time.monotonic() - started
        _is_problem(resp, 502)
        assert elapsed < TIMEOUT + 1.0
        assert client.get("/api/v1/posts/ok").status_code == 200


def test_an_upstream_problem_with_retry_after_passes_through(world):
    with world.client() as client:
        resp = client.get("/api/v1/posts/problem503")
    _is_problem(resp, 503)
    assert resp.headers["retry-after"] == "7"
    assert resp.json()["detail"] == "busy"


def test_an_endless_answer_is_cut_at_the_size_cap(world):
    received = 0

    def read_all(resp: httpx.Response) -> None:
        nonlocal received
        for chunk in resp.iter_raw():
            received += len(chunk)

    with world.client() as client, client.stream("GET", "/api/v1/posts/bigchunked") as resp:
        assert resp.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            read_all(resp)
    assert 0 < received <= MAX_RESPONSE


def test_a_download_over_the_answer_cap_streams_through_with_its_length(world):
    """An export package (application/zip) is not held to the cap of JSON answers: it streams
    through whole, its Content-Length kept; cut upstream, it arrives short, never complete."""
    with world.client() as client:
        resp = client.get("/api/v1/records/matters/m/exports/e/bigzip")
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/zip", resp.headers
        assert int(resp.headers["content-length"]) == len(resp.content) == 12_000_000 > MAX_RESPONSE
        with client.stream("GET", "/api/v1/records/matters/m/exports/e/cutzip") as cut:
            assert cut.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                cut.read()


def test_server_sent_events_arrive_one_by_one_not_buffered(world):
    arrivals: list[float] = []
    with world.client() as client:
        started = time.monotonic()
        with client.stream("GET", "/api/v1/stream") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 5
    # the stub sends one event every 0.4 s: a buffering proxy would deliver them all at once
    assert arrivals[0] < 0.6, arrivals
    assert arrivals[-1] - arrivals[0] > 1.2, arrivals


def test_a_body_over_the_limit_is_413_before_it_reaches_the_service(world):
    feed = world.stubs["feed"]
    with world.client() as client:
        small = client.post("/api/v1/posts/echo", content=b"x" * 1000)
        assert small.json() == {"received": 1000}
        before = feed.seen()
        declared = client.post("/api/v1/posts/echo", content=b"x" * 2_000_000)
        _is_problem(declared, 413)

        def chunks() -> Iterator[bytes]:
            for _ in range(40):
                yield b"x" * 65536

        chunked = client.post("/api/v1/posts/echo", content=chunks())
        _is_problem(chunked, 413)
    assert feed.seen() == before


def test_readiness_names_each_upstream(world):
    with httpx.Client(base_url=world.url, timeout=10) as client:
        ready = client.get("/health/ready")
        assert ready.json() == {
            "status": "ready",
            "upstreams": {
                "identity": "ready",
                "feed": "ready",
                "groups": "ready",
                "moderation": "ready",
                "records": "ready",
                "media": "ready",
            },
        }
        world.stubs["groups"].stop()
        try:
            resp = client.get("/health/ready")
            _is_problem(resp, 503)
            assert resp.json()["upstreams"] == {
                "identity": "ready",
                "feed": "ready",
                "groups": "unreachable",
                "moderation": "ready",
                "records": "ready",
                "media": "ready",
            }
        finally:
            world.stubs["groups"].start()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/posts/l%C3%84%15%C2%94%C3%B0-/pin",
        "/api/v1/posts/%3F%5Cabc?q=a%26b&x=%2F",
        "/api/v1/posts/a%2Fb/ok?cursor=eyJzIjoiaCJ9&q=%E2%9C%93",
    ],
)
def test_the_path_and_query_reach_the_service_byte_for_byte(world, path):
    with world.client() as client:
        client.get(path)
        seen = httpx.get(world.stubs["feed"].url + "/_seen", timeout=5).json()["targets"]
    assert f"GET {path}" in seen


def test_cookies_an_upstream_sets_are_not_replayed_to_other_clients(world):
    """The forwarding client keeps no cookie jar: a Set-Cookie answer for one person must
    never ride along on another person's request."""
    with world.client() as client:
        assert client.get("/api/v1/posts/set-cookie").headers["set-cookie"].startswith("session=")
    with world.client() as other:
        assert other.get("/api/v1/posts/ok").status_code == 200
    seen = httpx.get(world.stubs["feed"].url + "/_seen", timeout=5).json()
    assert seen["cookies"] == []


def test_every_cookie_an_upstream_sets_reaches_the_client(world):
    """Each Set-Cookie is a header of its own: kept apart, in order, never joined into one."""
    with world.client() as client:
        resp = client.get("/api/v1/posts/set-cookies")
    assert resp.status_code == 200
    assert resp.headers.get_list("set-cookie") == [
        "gs_session=one; Path=/oauth; HttpOnly; SameSite=lax",
        "gs_csrf=two; Path=/oauth; HttpOnly; SameSite=lax",
        'gs_sso=""; Max-Age=0; Path=/oauth',
    ]
