"""Which client address a failed sign-in counts against: nobody but the gateway can choose it,
however wide the network identity trusts."""

from __future__ import annotations

import time

from kit.addresses import sign_client_address
from tests.helpers import PASSWORD, register
from tests.suite import build_suite

IDENTITY_TOKEN = "http://identity/api/v1/auth/token"
TOKEN = "/api/v1/auth/token"
SECRET = "a secret the gateway shares with identity"
WRONG = "wrong password!"
NO_GATEWAY_LIMITS = {"rate_limit_enabled": False}


def _attempt(email: str, password: str = WRONG) -> dict[str, str]:
    return {"grant_type": "password", "username": email, "password": password}


def _locked(resp) -> bool:
    return resp.status_code == 429 and "sign-ins" in resp.json()["detail"]


async def test_a_client_inside_the_trusted_network_cannot_rotate_forwarded_for_past_the_address_limit(
    database_urls,
):
    """The peer lies in the trusted network but is no proxy: only the last entry of
    X-Forwarded-For (the one a trusted proxy writes) is read, never the client's own."""
    overrides = {"login_failures_per_address": 3, "trusted_proxies": ["127.0.0.0/8"]}
    async with build_suite(database_urls, identity=overrides) as suite:
        for i in range(3):
            resp = await suite.client.post(
                IDENTITY_TOKEN,
                data=_attempt(f"user{i}@agency.example"),
                headers={"X-Forwarded-For": f"203.0.113.{i}, 127.0.0.5"},
            )
            assert resp.status_code == 400
        blocked = await suite.client.post(
            IDENTITY_TOKEN,
            data=_attempt("another@agency.example"),
            headers={"X-Forwarded-For": "203.0.113.99, 127.0.0.5"},
        )
        assert _locked(blocked), blocked.text


async def test_with_a_shared_secret_identity_believes_no_forwarded_address_but_the_gateways(database_urls):
    overrides = {
        "login_failures_per_address": 3,
        "trusted_proxies": ["127.0.0.0/8"],
        "client_address_secret": SECRET,
    }
    async with build_suite(database_urls, identity=overrides) as suite:
        for i in range(3):
            resp = await suite.client.post(
                IDENTITY_TOKEN,
                data=_attempt(f"user{i}@agency.example"),
                headers={
                    "X-Forwarded-For": f"203.0.113.{i}",
                    "X-Client-Address": f"203.0.113.{i};t=1;sig=forged",
                },
            )
            assert resp.status_code == 400
        blocked = await suite.client.post(
            IDENTITY_TOKEN,
            data=_attempt("another@agency.example"),
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert _locked(blocked), blocked.text


async def test_the_gateway_signs_the_address_it_resolved_and_identity_counts_per_client(database_urls):
    """The gateway stands behind one proxy in a trusted network that also holds clients: a client
    rotating its own X-Forwarded-For entries stays one address; another client is untouched."""
    async with build_suite(
        database_urls,
        identity={"login_failures_per_address": 3, "trusted_proxies": [], "client_address_secret": SECRET},
        gateway={**NO_GATEWAY_LIMITS, "trusted_proxies": ["127.0.0.0/8"], "client_address_secret": SECRET},
    ) as suite:
        email = await register(suite.client, "ada")
        for i in range(3):
            resp = await suite.client.post(
                TOKEN,
                data=_attempt(f"user{i}@agency.example"),
                headers={"X-Forwarded-For": f"203.0.113.{i}, 127.0.0.5"},
            )
            assert resp.status_code == 400
        blocked = await suite.client.post(
            TOKEN, data=_attempt(email, PASSWORD), headers={"X-Forwarded-For": "203.0.113.77, 127.0.0.5"}
        )
        assert _locked(blocked), blocked.text
        other = await suite.client.post(
            TOKEN, data=_attempt(email, PASSWORD), headers={"X-Forwarded-For": "127.0.0.6"}
        )
        assert other.status_code == 200, other.text


async def test_a_signed_address_sent_by_a_client_is_replaced_by_the_gateway(database_urls):
    """Even a genuine signature (seen on the network and replayed at once) names nobody: the
    gateway drops the client's X-Client-Address and signs the address it saw itself."""
    async with build_suite(
        database_urls,
        identity={"login_failures_per_address": 3, "trusted_proxies": [], "client_address_secret": SECRET},
        gateway={**NO_GATEWAY_LIMITS, "client_address_secret": SECRET},
    ) as suite:
        for i in range(4):
            captured = sign_client_address(SECRET, f"203.0.113.{i}", time.time())
            resp = await suite.client.post(
                TOKEN, data=_attempt(f"user{i}@agency.example"), headers={"X-Client-Address": captured}
            )
        assert _locked(resp), resp.text
