"""Sign-in throttling: per account name and per client address, the same for accounts that
exist and accounts that do not."""

from __future__ import annotations

from sqlalchemy import update

from services.identity.models import LoginThrottle
from tests.helpers import PASSWORD, login, register
from tests.suite import build_suite

TOKEN = "/api/v1/auth/token"


def _attempt(email: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": email, "password": password}


def _shape(resp) -> tuple[int, str, str | None]:
    body = resp.json()
    return resp.status_code, body.get("error") or body["title"], resp.headers.get("retry-after") and "set"


async def test_repeated_failures_lock_the_account_name_then_it_unlocks(suite):
    email = await register(suite.client, "ada")
    for _ in range(5):
        resp = await suite.client.post(TOKEN, data=_attempt(email, "wrong password!"))
        assert resp.status_code == 400
    locked = await suite.client.post(TOKEN, data=_attempt(email, PASSWORD))
    assert locked.status_code == 429
    assert locked.headers["content-type"] == "application/problem+json"
    assert 1 <= int(locked.headers["retry-after"]) <= 30
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(LoginThrottle).values(locked_until=None))  # the wait is over
    await login(suite.client, email)


async def test_unknown_and_existing_accounts_are_answered_alike(suite):
    email = await register(suite.client, "ada")
    known = [await suite.client.post(TOKEN, data=_attempt(email, "wrong password!")) for _ in range(6)]
    unknown = [
        await suite.client.post(TOKEN, data=_attempt("ghost@agency.example", "wrong!")) for _ in range(6)
    ]
    assert [_shape(r) for r in known] == [_shape(r) for r in unknown]
    assert known[-1].status_code == 429
    strip = lambda r: {k: v for k, v in r.json().items() if k not in ("trace_id", "instance")}  # noqa: E731
    assert strip(known[0]) == strip(unknown[0])


async def test_many_accounts_guessed_from_one_address_lock_the_address(database_urls):
    overrides = {"login_failures_per_address": 8}
    async with build_suite(database_urls, identity=overrides) as suite:
        for i in range(8):
            resp = await suite.client.post(TOKEN, data=_attempt(f"user{i}@agency.example", "wrong password!"))
            assert resp.status_code == 400
        email = await register(suite.client, "ada")
        blocked = await suite.client.post(TOKEN, data=_attempt(email, PASSWORD))
        assert blocked.status_code == 429
        # another client address (as the gateway reports it) is not affected
        other = await suite.client.post(
            "http://identity/api/v1/auth/token",
            data=_attempt(email, PASSWORD),
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert other.status_code == 200, other.text


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(database_urls):
    overrides = {"login_failures_per_address": 3, "trusted_proxies": ["10.9.9.9"]}
    async with build_suite(database_urls, identity=overrides) as suite:
        for i in range(3):
            await suite.client.post(
                "http://identity/api/v1/auth/token",
                data=_attempt(f"user{i}@agency.example", "wrong password!"),
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
        resp = await suite.client.post(
            "http://identity/api/v1/auth/token", data=_attempt("x@agency.example", "nope")
        )
        assert resp.status_code == 429


async def test_a_trusted_proxy_network_is_believed_for_the_client_address(database_urls):
    """Behind a Kubernetes Service the gateway's address changes with its pods: a network can be
    trusted. Failures then count per client address the gateway reports, not per gateway."""
    overrides = {"login_failures_per_address": 3, "trusted_proxies": ["127.0.0.0/8"]}
    async with build_suite(database_urls, identity=overrides) as suite:
        for i in range(3):
            await suite.client.post(
                "http://identity/api/v1/auth/token",
                data=_attempt(f"user{i}@agency.example", "wrong password!"),
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
        blocked = await suite.client.post(
            "http://identity/api/v1/auth/token",
            data=_attempt("x@agency.example", "nope"),
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert blocked.status_code == 429
        other = await suite.client.post(
            "http://identity/api/v1/auth/token",
            data=_attempt("x@agency.example", "nope"),
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert other.status_code == 400, other.text
