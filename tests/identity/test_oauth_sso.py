"""Single sign-on at the authorization endpoint (decision 0035): the sign-in page sends the
browser to the organisation's provider with its own code flow (state, nonce, PKCE S256), and
the callback signs the browser in only with this browser's state, a code the provider redeems
for an ID token with our nonce and audience, and an active account; every refusal is the
sign-in page with one generic message.

The provider is a real process on loopback (tests/identity/sso_provider.py); identity runs in
process, reaching it over real sockets."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from services.identity.models import Account, AuthorizationCode, SignInSession
from tests.helpers import login, register
from tests.oauth_forms import (
    AUTHORIZE,
    REDIRECT,
    Pkce,
    authorize_query,
    authorize_url,
    browser,
    follow,
    form_for,
    make_app,
    returned,
    set_cookies,
    submission,
)
from tests.processes import free_port, uvicorn
from tests.suite import Suite, build_suite

CLIENT_ID = "govsocial"
SECRET = secrets.token_urlsafe(24)
PUBLIC = "http://gateway"  # where the browser reaches the suite: our redirect URI at the provider
SSO_FAILED = "The agency's sign-on did not sign you in."


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SSO_ISSUER": url, "SSO_CLIENT_ID": CLIENT_ID, "SSO_CLIENT_SECRET": SECRET}
    process = uvicorn("tests.identity.sso_provider:create_app", port, env, name="sso provider")
    try:
        process.wait_until_answers(url + "/jwks", status=200)
        yield url
    finally:
        process.stop()


@pytest.fixture
async def sso(database_urls: dict[str, str], provider: str) -> AsyncIterator[Suite]:
    overrides = {
        "public_url": PUBLIC,
        "oidc_issuer": provider,
        "oidc_jwks_url": f"{provider}/jwks",
        "oidc_audience": CLIENT_ID,
        "oidc_authorization_url": f"{provider}/authorize",
        "oidc_token_url": f"{provider}/token",
        "oidc_client_secret": SECRET,
    }
    async with build_suite(database_urls, identity=overrides) as suite:
        # the in-process services reach each other by name; loopback goes over real sockets
        loopback = httpx.AsyncHTTPTransport()
        suite.router.apps["127.0.0.1"] = loopback  # type: ignore[assignment]
        async with loopback:
            yield suite


async def plan(provider: str, **what: str) -> None:
    """Whom the provider signs in next, and how it misbehaves."""
    async with httpx.AsyncClient() as client:
        assert (await client.put(f"{provider}/_plan", json=what)).status_code == 200


async def to_provider(web: httpx.AsyncClient, app_id: str) -> httpx.Response:
    """The sign-in page's "Continue with the agency's sign-on": the redirect to the provider."""
    page = await web.get(authorize_url(app_id, REDIRECT, Pkce()))
    started = await web.post(AUTHORIZE, data=submission(page.text, "sso"))
    assert started.status_code == 303, started.text
    return started


async def back_from_provider(web: httpx.AsyncClient, started: httpx.Response) -> str:
    """The provider signs the planned person in and sends the browser back: where to."""
    answer = await web.get(started.headers["location"])
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


async def sessions(suite: Suite) -> list[SignInSession]:
    async with suite.identity.state.database.sessionmaker() as session:
        return list((await session.scalars(select(SignInSession))).all())


def assert_refused(resp: httpx.Response) -> None:
    assert resp.status_code == 400, resp.text
    assert form_for(resp.text, "signin") and form_for(resp.text, "sso")
    assert SSO_FAILED in resp.text and 'role="alert"' in resp.text
    assert "gs_session" not in set_cookies(resp)


async def test_the_agencys_sign_on_signs_the_browser_in_and_the_app_gets_its_code(sso, provider):
    app_id = await make_app(sso)
    ada = await register(sso.client, "ada")
    await plan(provider, email=ada.upper())
    async with browser(sso) as web:
        query = authorize_query(app_id, REDIRECT, Pkce())
        page = await web.get(AUTHORIZE, params=query)
        policy = page.headers["content-security-policy"]
        assert f"form-action 'self' https://board.agency.example {provider};" in policy
        started = await web.post(AUTHORIZE, data=submission(page.text, "sso"))
        location = started.headers["location"]
        assert location.startswith(f"{provider}/authorize?")
        sent = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert sent.keys() == {
            "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
            "code_challenge_method",
        }  # fmt: skip
        assert (sent["client_id"], sent["redirect_uri"]) == (CLIENT_ID, f"{PUBLIC}/oauth/callback")
        assert (sent["response_type"], sent["scope"], sent["code_challenge_method"]) == (
            "code",
            "openid email",
            "S256",
        )
        assert len(sent["code_challenge"]) == 43 and sent["state"] != sent["nonce"]
        kept = set_cookies(started)["gs_sso"].lower()
        for part in ("httponly", "samesite=lax", "path=/oauth", "max-age=600"):
            assert part in kept, kept

        callback = await back_from_provider(web, started)
        assert callback.startswith(f"{PUBLIC}/oauth/callback?")
        signed = await web.get(callback)
        assert parse_qs(urlsplit(follow(signed)).query) == {k: [v] for k, v in query.items()}
        cookies = set_cookies(signed)  # two Set-Cookie headers through the gateway
        assert "max-age=43200" in cookies["gs_session"].lower()
        assert "max-age=0" in cookies["gs_sso"].lower()
        assert "gs_sso" not in web.cookies

        consent = await web.get(follow(signed))
        assert form_for(consent.text, "consent") and ada in consent.text
        answered = await web.post(AUTHORIZE, data=submission(consent.text, "consent"))
        code = returned(answered.headers["location"], REDIRECT)["code"]
        async with sso.identity.state.database.sessionmaker() as session:
            rows = (await session.scalars(select(AuthorizationCode))).all()
        assert len(rows) == 1 and str(rows[0].persona_id) == (await login(sso.client, ada))["persona_id"]
        assert code.startswith("gsc_")

        # signed in: another app needs neither the password nor the provider
        other = await make_app(sso, redirect_uris=["https://wiki.agency.example/cb"], name="Wiki")
        page = await web.get(authorize_url(other, "https://wiki.agency.example/cb", Pkce()))
        assert form_for(page.text, "consent")
    async with httpx.AsyncClient() as client:
        (redeemed,) = (await client.get(f"{provider}/_seen")).json()
    assert redeemed == {
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "redirect_uri": f"{PUBLIC}/oauth/callback",
    }


async def test_a_callback_with_another_browsers_state_signs_nobody_in(sso, provider):
    app_id = await make_app(sso)
    mallory = await register(sso.client, "mallory")
    await register(sso.client, "ada")
    await plan(provider, email=mallory)
    async with browser(sso) as attacker, browser(sso) as victim:
        # the attacker's own sign-on, stopped at the callback it would lead to
        forged = await back_from_provider(attacker, await to_provider(attacker, app_id))
        # the victim's browser started a sign-on of its own, then is lured to the attacker's
        await to_provider(victim, app_id)
        refused = await victim.get(forged)
        assert_refused(refused)
        assert "max-age=0" in set_cookies(refused)["gs_sso"].lower()  # that sign-on is over
        # a browser that started no sign-on at all gets an error page
        async with browser(sso) as stranger:
            resp = await stranger.get(forged)
            assert resp.status_code == 400 and "location" not in resp.headers
            assert "did not come back to a sign-in of this browser" in resp.text
    assert await sessions(sso) == []


async def test_a_callback_without_its_code_with_another_state_or_stale_signs_nobody_in(sso, provider):
    """The gateway's limit on sign-in requests per address (20 a minute) is why this is a test
    of its own."""
    app_id = await make_app(sso)
    await plan(provider, email=await register(sso.client, "ada"))
    async with browser(sso) as web:
        callback = await back_from_provider(web, await to_provider(web, app_id))
        state = parse_qs(urlsplit(callback).query)["state"][0]
        assert_refused(await web.get(f"{PUBLIC}/oauth/callback", params={"state": state}))
        callback = await back_from_provider(web, await to_provider(web, app_id))
        code = parse_qs(urlsplit(callback).query)["code"][0]
        other_state = {"code": code, "state": secrets.token_urlsafe(32)}
        assert_refused(await web.get(f"{PUBLIC}/oauth/callback", params=other_state))
        stale = await back_from_provider(web, await to_provider(web, app_id))
        fresh = await back_from_provider(web, await to_provider(web, app_id))
        assert_refused(await web.get(stale))
        ended = await web.get(fresh)  # a refused callback ends the sign-on it came to
        assert ended.status_code == 400 and "did not come back" in ended.text
        assert await sessions(sso) == []
        callback = await back_from_provider(web, await to_provider(web, app_id))
        assert (await web.get(callback)).status_code == 303  # its own sign-on, as planned
    assert len(await sessions(sso)) == 1


@pytest.mark.parametrize(
    "misbehaviour",
    [{"nonce": "another sign-in's"}, {"aud": "someone-else"}, {"error": "access_denied"}],
)
async def test_an_id_token_for_another_sign_in_or_audience_or_an_error_signs_nobody_in(
    sso, provider, misbehaviour
):
    app_id = await make_app(sso)
    ada = await register(sso.client, "ada")
    await plan(provider, email=ada, **misbehaviour)
    async with browser(sso) as web:
        callback = await back_from_provider(web, await to_provider(web, app_id))
        assert_refused(await web.get(callback))
    assert await sessions(sso) == []


async def test_an_unknown_or_suspended_account_gets_the_same_refusal(sso, provider):
    app_id = await make_app(sso)
    bob = await register(sso.client, "bob")
    async with sso.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(Account).where(col(Account.email) == bob).values(status="suspended"))
    pages = []
    for email in ("nobody@agency.example", bob):
        await plan(provider, email=email)
        async with browser(sso) as web:
            callback = await back_from_provider(web, await to_provider(web, app_id))
            refused = await web.get(callback)
            assert_refused(refused)
            pages.append(re.sub(r'type="hidden" name="(\w+)" value="[^"]*"', r"\1", refused.text))
    assert pages[0] == pages[1]
    assert await sessions(sso) == []
