"""Who a sign-in lock stops: the guesser's (account, address) pair, and the account itself only
under a distributed attack, answered exactly as a wrong password."""

from __future__ import annotations

from sqlalchemy import update

from services.identity.models import LoginThrottle
from tests.helpers import PASSWORD, register
from tests.suite import build_suite

IDENTITY_TOKEN = "http://identity/api/v1/auth/token"
WRONG = "wrong password!"
ATTACKER = "203.0.113.66"
OWNER = "198.51.100.7"


async def _sign_in(suite, email: str, password: str, address: str):
    """A sign-in as the gateway forwards it from a client at ``address``."""
    return await suite.client.post(
        IDENTITY_TOKEN,
        data={"grant_type": "password", "username": email, "password": password},
        headers={"X-Forwarded-For": address},
    )


def _without_ids(resp) -> dict[str, object]:
    return {k: v for k, v in resp.json().items() if k not in ("trace_id", "instance")}


async def test_an_attacker_failing_from_one_address_does_not_lock_the_owner_out_from_another(suite):
    email = await register(suite.client, "ada")
    for _ in range(12):
        await _sign_in(suite, email, WRONG, ATTACKER)
    attacker = await _sign_in(suite, email, PASSWORD, ATTACKER)
    assert attacker.status_code == 429
    owner = await _sign_in(suite, email, PASSWORD, OWNER)
    assert owner.status_code == 200, owner.text


async def test_a_distributed_attack_locks_the_account_with_the_answer_of_a_wrong_password(database_urls):
    overrides = {"login_failures_per_account_all_addresses": 8}
    async with build_suite(database_urls, identity=overrides) as suite:
        email = await register(suite.client, "ada")
        for i in range(8):
            resp = await _sign_in(suite, email, WRONG, f"203.0.113.{i}")
            assert resp.status_code == 400
        wrong = await _sign_in(suite, email, WRONG, OWNER)
        right = await _sign_in(suite, email, PASSWORD, OWNER)
        assert (right.status_code, right.headers.get("retry-after")) == (400, None)
        assert right.headers["content-type"] == wrong.headers["content-type"] == "application/problem+json"
        assert _without_ids(right) == _without_ids(wrong)

        async with suite.identity.state.database.sessionmaker() as session, session.begin():
            await session.execute(update(LoginThrottle).values(locked_until=None))  # the wait is over
        assert (await _sign_in(suite, email, PASSWORD, OWNER)).status_code == 200


async def test_failures_spread_below_the_distributed_threshold_leave_the_account_open(database_urls):
    overrides = {"login_failures_per_account_all_addresses": 8}
    async with build_suite(database_urls, identity=overrides) as suite:
        email = await register(suite.client, "ada")
        for i in range(7):
            await _sign_in(suite, email, WRONG, f"203.0.113.{i}")
        assert (await _sign_in(suite, email, PASSWORD, OWNER)).status_code == 200
