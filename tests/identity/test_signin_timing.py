"""The sign-in page takes as long to refuse an address nobody has as a wrong password for an
account that exists, so that its response time does not tell who has an account (decision 0019
for the token endpoint; the page checks passwords with the same function, decision 0035).
Compared over some hundreds of requests, with the locks set out of reach: a lock answers at once
whoever asks, and is tested on its own (tests/identity/test_oauth_pages.py)."""

from __future__ import annotations

import pytest

from bench.timing import indistinguishable
from tests.helpers import register
from tests.oauth_forms import AUTHORIZE, REDIRECT, Pkce, authorize_url, browser, make_app, submission
from tests.suite import build_suite

pytestmark = pytest.mark.slow

UNLOCKED = {
    "login_failures_per_account": 100_000,
    "login_failures_per_account_all_addresses": 100_000,
    "login_failures_per_address": 100_000,
}


async def test_an_unknown_address_takes_as_long_to_refuse_as_a_wrong_password(database_urls):
    async with build_suite(database_urls, identity=UNLOCKED) as suite:
        email = await register(suite.client, "ada")
        app_id = await make_app(suite)
        async with browser(suite, "http://identity") as web:
            page = await web.get(authorize_url(app_id, REDIRECT, Pkce()))
            assert page.status_code == 200, page.text

            async def refused(address: str) -> None:
                form = submission(page.text, "signin", email=address, password="not the password")
                resp = await web.post(AUTHORIZE, data=form)
                assert resp.status_code == 400, resp.text

            result = await indistinguishable(lambda: refused(email), lambda: refused("nobody@agency.example"))
    assert not result.distinguishable(), str(result)


async def test_the_token_endpoint_takes_as_long_for_an_unknown_address_as_for_a_wrong_password(
    database_urls,
):
    async with build_suite(database_urls, identity=UNLOCKED) as suite:
        email = await register(suite.client, "ada")

        async def refused(address: str) -> None:
            form = {"grant_type": "password", "username": address, "password": "not the password"}
            resp = await suite.client.post("http://identity/api/v1/auth/token", data=form)
            assert resp.status_code == 400, resp.text

        result = await indistinguishable(lambda: refused(email), lambda: refused("nobody@agency.example"))
    assert not result.distinguishable(), str(result)
