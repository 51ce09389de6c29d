"""socialctl's connections: an idle one is dropped before the servers close it, and a request
lost on a connection closed under it is sent again only when sending it twice is harmless."""

from __future__ import annotations

import asyncio
import re

import pytest

from launcher.__main__ import uvicorn_command
from socialctl.api import KEEPALIVE_EXPIRY, Api, ApiError
from socialctl.config import Config
from tests.cli.stub_server import StubServer
from tests.processes import ROOT


def api_of(server: StubServer) -> Api:
    """socialctl's own client (``default_client``), signed in, towards the stub server."""
    return Api(Config(url=server.url, access_token="token"))


def servers_keep_alive() -> list[float]:
    """The keep-alive of every server socialctl talks to, as the launcher and the deployments'
    entrypoint start uvicorn."""
    command = uvicorn_command("gateway", "127.0.0.1", 8000)
    entrypoint = (ROOT / "deploy" / "entrypoint.sh").read_text()
    return [
        float(command[command.index("--timeout-keep-alive") + 1]),
        *(float(v) for v in re.findall(r"--timeout-keep-alive (\d+(?:\.\d+)?)", entrypoint)),
    ]


def test_idle_connections_expire_well_before_the_servers_close_them():
    keep_alives = servers_keep_alive()
    assert len(keep_alives) == 2
    # a margin of seconds: between taking a connection from the pool and the server reading
    # the request, a loaded machine may lose a good part of one
    assert all(keep_alive - KEEPALIVE_EXPIRY >= 2 for keep_alive in keep_alives)


async def test_a_connection_idle_for_longer_than_the_expiry_is_never_reused():
    async with StubServer(keep_alive=1.0) as server, api_of(server) as api:
        assert (await api.call("GET", "/a"))["connection"] == 1
        await asyncio.sleep(KEEPALIVE_EXPIRY + 0.5)  # the idle time under test, not a wait for state
        assert (await api.call("GET", "/b"))["connection"] == 2
    assert server.dropped() == [] and server.connections == 2


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {}),
        ("PUT", {}),
        ("DELETE", {}),
        ("POST", {"Idempotency-Key": "7b0c6f9e-2f55-4d1e-9c3a-0d6f1b2a3c4d"}),
    ],
)
async def test_a_request_lost_on_a_closed_connection_is_sent_again_when_that_is_harmless(method, headers):
    async with StubServer(keep_alive=0.0) as server, api_of(server) as api:
        assert (await api.call("GET", "/warm"))["connection"] == 1
        answer = await api.call(method, "/thing", headers=headers, json={"n": 1})
    assert answer["connection"] == 2
    first, second = server.requests[1:]
    assert (first.method, first.connection, first.answered) == (method, 1, False)
    assert (second.method, second.connection, second.answered) == (method, 2, True)
    assert first.body == second.body and first.headers.get("idempotency-key") == headers.get(
        "Idempotency-Key"
    )


async def test_a_post_without_an_idempotency_key_is_never_sent_twice():
    async with StubServer(keep_alive=0.0) as server, api_of(server) as api:
        await api.call("GET", "/warm")
        with pytest.raises(ApiError) as lost:
            await api.call("POST", "/api/v1/groups", json={"name": "Once"})
        await api.call("GET", "/warm")
        with pytest.raises(ApiError):
            await api.token({"grant_type": "refresh_token", "refresh_token": "rotates"})
    assert lost.value.title == "No answer from the API"
    assert [(s.method, s.answered) for s in server.requests] == [
        ("GET", True),
        ("POST", False),
        ("GET", True),
        ("POST", False),
    ]


async def test_a_request_is_sent_again_once_only():
    async with StubServer(statuses=[None, None]) as server, api_of(server) as api:
        with pytest.raises(ApiError) as lost:
            await api.call("GET", "/twice")
        assert (await api.call("GET", "/then"))["connection"] == 3
    assert lost.value.title == "No answer from the API" and "RemoteProtocolError" in str(lost.value.detail)
    assert [(s.target, s.answered) for s in server.requests] == [
        ("/twice", False),
        ("/twice", False),
        ("/then", True),
    ]
