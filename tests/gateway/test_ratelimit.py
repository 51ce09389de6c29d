"""Rate limits per route group, per token and per client address, in memory and in a real Redis
shared by several gateway replicas (docs/threats.md R1, R4)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from gateway.app import create_app as create_gateway
from gateway.ratelimit import MemoryBackend
from gateway.settings import GatewaySettings
from kit.addresses import ClientAddress
from tests.helpers import PASSWORD, auth, person, register
from tests.suite import AUDIENCE, ISSUER, build_suite

REDIS_URL = "redis://127.0.0.1:6379/0"
TOKEN = "/api/v1/auth/token"
LIMITS = {
    "auth": {"per_address": 3, "window_seconds": 60},
    "default": {"per_token": 4, "per_address": 10, "window_seconds": 60},
}


def _form(email: str) -> dict[str, str]:
    return {"grant_type": "password", "username": email, "password": PASSWORD}


def _policy(header: str) -> dict[str, dict[str, int]]:
    out = {}
    for item in header.split(","):
        name, *params = item.strip().split(";")
        out[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return out


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"govsocial-test:{uuid.uuid4().hex}:"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_sign_in_is_limited_per_address_with_ratelimit_headers_and_a_429_problem(database_urls):
    async with build_suite(database_urls, gateway={"rate_limits": LIMITS}) as suite:
        email = await register(suite.client, "ada")
        answers = [await suite.client.post(TOKEN, data=_form(email)) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    first = answers[0]
    assert _policy(first.headers["ratelimit-policy"]) == {"auth-address": {"q": 3, "w": 60}}
    assert _policy(first.headers["ratelimit"])["auth-address"]["r"] == 2
    assert 0 < _policy(first.headers["ratelimit"])["auth-address"]["t"] <= 60
    limited = answers[-1]
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["status"] == 429
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert _policy(limited.headers["ratelimit"])["auth-address"]["r"] == 0


async def test_api_calls_are_limited_per_token_subject_before_per_address(database_urls):
    async with build_suite(database_urls, gateway={"rate_limits": LIMITS}) as suite:
        ada, _ = await person(suite.client, "ada")
        bob, _ = await person(suite.client, "bob")
        ada_answers = [await suite.client.get("/api/v1/me", headers=auth(ada)) for _ in range(5)]
        assert [r.status_code for r in ada_answers] == [200] * 4 + [429]
        policies = _policy(ada_answers[0].headers["ratelimit-policy"])
        assert policies == {"default-address": {"q": 10, "w": 60}, "default-token": {"q": 4, "w": 60}}
        # bob has a token budget of his own, but shares the address budget (10): two
        # registrations with their confirmations and ada's five calls used nine
        assert (await suite.client.get("/api/v1/me", headers=auth(bob))).status_code == 200
        assert (await suite.client.get("/api/v1/me", headers=auth(bob))).status_code == 429
        # another address has a budget of its own
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=suite.gateway, client=("198.51.100.9", 4000)),
            base_url="http://gateway",
        )
        async with other:
            assert (await other.get("/api/v1/me", headers=auth(bob))).status_code == 200


async def test_probes_and_documents_are_never_limited(database_urls):
    tight = {"default": {"per_address": 1}, "auth": {"per_address": 1}}
    async with build_suite(database_urls, gateway={"rate_limits": tight}) as suite:
        for _ in range(3):
            assert (await suite.client.get("/health/live")).status_code == 200
            assert (await suite.client.get("/openapi.json")).status_code == 200


async def test_limits_can_be_switched_off(database_urls):
    async with build_suite(
        database_urls, gateway={"rate_limit_enabled": False, "rate_limits": LIMITS}
    ) as suite:
        email = await register(suite.client, "ada")
        answers = [await suite.client.post(TOKEN, data=_form(email)) for _ in range(5)]
        assert {r.status_code for r in answers} == {200}
        assert "ratelimit" not in answers[0].headers


async def test_two_gateway_replicas_share_one_budget_in_redis(database_urls, redis_prefix):
    overrides = {"rate_limits": LIMITS, "redis_url": REDIS_URL, "redis_key_prefix": redis_prefix}
    async with build_suite(database_urls, gateway=overrides) as suite:
        email = await register(suite.client, "ada")
        replica = create_gateway(
            GatewaySettings(
                identity_url="http://identity",
                feed_url="http://feed",
                groups_url="http://groups",
                moderation_url="http://moderation",
                token_issuer=ISSUER,
                token_audience=AUDIENCE,
                **overrides,
            ),
            http_client=httpx.AsyncClient(transport=suite.router),
        )
        async with (
            replica.router.lifespan_context(replica),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=replica), base_url="http://gw2") as second,
        ):
            statuses = []
            for client in (suite.client, second, suite.client, second):
                statuses.append((await client.post(TOKEN, data=_form(email))).status_code)
    assert statuses == [200, 200, 200, 429]
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=redis_prefix + "*")]
    ttls = [await client.pttl(key) for key in keys]
    await client.aclose()
    names = sorted(key.decode().removeprefix(redis_prefix).split(":")[0] for key in keys)
    assert names == ["auth-address", "default-address"]  # sign-in, and the registration
    assert all(re.fullmatch(rf"{re.escape(redis_prefix)}[a-z-]+:[0-9a-f]{{32}}", k.decode()) for k in keys)
    assert all(0 < ttl <= 60_000 for ttl in ttls)


async def test_requests_go_through_when_redis_does_not_answer(database_urls):
    overrides = {"rate_limits": LIMITS, "redis_url": "redis://127.0.0.1:1/0", "redis_timeout_seconds": 0.2}
    async with build_suite(database_urls, gateway=overrides) as suite:
        email = await register(suite.client, "ada")
        answers = [await suite.client.post(TOKEN, data=_form(email)) for _ in range(4)]
    assert {r.status_code for r in answers} == {200}


async def test_memory_window_restarts_after_it_expires(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("gateway.ratelimit.time.monotonic", lambda: clock[0])
    backend = MemoryBackend()
    assert await backend.hit("k", 10) == (1, 10.0)
    clock[0] += 4
    assert await backend.hit("k", 10) == (2, 6.0)
    clock[0] += 6
    assert await backend.hit("k", 10) == (1, 10.0)


async def test_memory_table_drops_expired_windows_when_full(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("gateway.ratelimit.time.monotonic", lambda: clock[0])
    backend = MemoryBackend(max_keys=3)
    for key in "abc":
        await backend.hit(key, 5)
    clock[0] += 6
    await backend.hit("d", 5)
    assert set(backend._counters) == {"d"}


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # untrusted peer: its header is ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.66, 198.51.100.1, 10.0.0.9", "198.51.100.1"),
        ("10.0.0.2", None, "10.0.0.2"),
    ],
)
def test_client_address_trusts_forwarded_for_only_from_trusted_proxies(peer, forwarded, client):
    assert ClientAddress(["10.0.0.0/8"])(peer, forwarded) == client
