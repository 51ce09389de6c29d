"""The authorization endpoint's pages (decision 0035), through the gateway as a browser uses
them: the redirect URI matched exactly before anything else, errors sent back to the app with
its state and our issuer, PKCE S256 only, sign-in with the token endpoint's locks and answers,
the consent page's personas, CSRF, the pages' security headers, deny, sign-out, prompt=login,
and a second app signed in by the same browser without the password."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from kit.timeutil import utcnow
from services.identity.models import Account, App, AuthorizationCode, Persona, SignInSession
from services.identity.tokens import digest
from tests.helpers import PASSWORD, login, register, with_personal
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
    parse,
    returned,
    set_cookies,
    submission,
)
from tests.suite import ISSUER, Suite, build_suite

TOKEN = "/api/v1/auth/token"
REFUSED = "The email or the password is not right."


@pytest.fixture
async def app_id(suite: Suite) -> str:
    return await make_app(suite)


@pytest.fixture
async def ada(suite: Suite) -> str:
    return await register(suite.client, "ada")


@pytest.fixture
async def web(suite: Suite) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(suite) as client:
        yield client


async def sign_in(
    web: httpx.AsyncClient, app_id: str, email: str, pkce: Pkce, *, redirect_uri: str = REDIRECT, **extra: str
) -> httpx.Response:
    """From the app's redirect to the consent page: the sign-in page, the password, back."""
    page = await web.get(authorize_url(app_id, redirect_uri, pkce, **extra))
    assert page.status_code == 200, page.text
    signed = await web.post(AUTHORIZE, data=submission(page.text, "signin", email=email, password=PASSWORD))
    consent = await web.get(follow(signed))
    assert consent.status_code == 200, consent.text
    assert form_for(consent.text, "consent")
    return consent


async def allow(
    web: httpx.AsyncClient, consent: httpx.Response, persona: str = "professional"
) -> httpx.Response:
    return await web.post(AUTHORIZE, data=submission(consent.text, "consent", persona=persona))


async def code_row(suite: Suite, code: str) -> AuthorizationCode | None:
    async with suite.identity.state.database.sessionmaker() as session:
        row: AuthorizationCode | None = await session.get(AuthorizationCode, digest(code))
        return row


async def codes(suite: Suite) -> int:
    async with suite.identity.state.database.sessionmaker() as session:
        return len((await session.scalars(select(AuthorizationCode))).all())


async def set_account_status(suite: Suite, email: str, status: str) -> None:
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(Account).where(col(Account.email) == email).values(status=status))


def assert_page_headers(resp: httpx.Response, *form_targets: str) -> None:
    """The headers every page carries, and a stylesheet that is the one the policy allows."""
    assert resp.headers["content-type"].startswith("text/html")
    directives = [d.strip().split(" ", 1) for d in resp.headers["content-security-policy"].split(";")]
    policy = dict(directives)
    style = re.search(r"<style>(.*?)</style>", resp.text, re.S)
    assert style is not None
    style_hash = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert policy == {
        "default-src": "'none'",
        "style-src": f"'sha256-{style_hash}'",
        "form-action": " ".join(["'self'", *form_targets]),
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
    }
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "same-origin"
    assert resp.headers["cache-control"] == "no-store"
    lowered = resp.text.lower()
    assert "<script" not in lowered and " src=" not in lowered and "<link" not in lowered
    assert " href=" not in lowered and "url(" not in lowered and "@import" not in lowered
    assert '<html lang="en">' in resp.text and "<h1>" in resp.text


# -- the whole flow ----------------------------------------------------------------------------


async def test_a_browser_signs_in_consents_and_the_app_gets_a_code_bound_to_its_request(
    suite, app_id, ada, web
):
    pkce = Pkce()
    query = authorize_query(app_id, REDIRECT, pkce, scope="read")
    page = await web.get(f"{AUTHORIZE}?{urlencode(query)}")
    assert page.status_code == 200
    assert_page_headers(page, "https://board.agency.example")
    parsed = parse(page.text)
    email_input = next(i for i in parsed.inputs if i.get("name") == "email")
    password_input = next(i for i in parsed.inputs if i.get("name") == "password")
    assert (email_input["type"], email_input["autocomplete"]) == ("email", "username")
    assert (password_input["type"], password_input["autocomplete"]) == ("password", "current-password")
    assert {"email", "password"} <= parsed.labels
    assert "Team board" in page.text
    assert "sso" not in form_for(page.text, "signin").actions()  # no sign-on configured
    assert [f for f in parsed.forms if "sso" in f.actions()] == []
    csrf_cookie = set_cookies(page)["gs_csrf"].lower()
    assert "httponly" in csrf_cookie and "samesite=lax" in csrf_cookie and "path=/oauth" in csrf_cookie
    assert "secure" not in csrf_cookie  # plain http here

    signed = await web.post(AUTHORIZE, data=submission(page.text, "signin", email=ada, password=PASSWORD))
    assert signed.status_code == 303
    assert parse_qs(urlsplit(follow(signed)).query) == {k: [v] for k, v in query.items()}
    session_cookie = set_cookies(signed)["gs_session"].lower()
    for part in ("httponly", "samesite=lax", "path=/oauth", "max-age=43200"):
        assert part in session_cookie, session_cookie

    consent = await web.get(follow(signed))
    assert_page_headers(consent, "https://board.agency.example")
    assert "Allow Team board?" in consent.text
    assert "Read what this persona may read" in consent.text
    assert "Act as this persona" not in consent.text  # only read was asked for
    assert form_for(consent.text, "consent").radios == {"persona": ["professional"]}
    assert ada in consent.text  # whom the browser is signed in as

    answered = await allow(web, consent)
    params = returned(answered.headers["location"], REDIRECT)
    assert set(params) == {"code", "state", "iss"}
    assert (params["state"], params["iss"]) == (query["state"], ISSUER)
    row = await code_row(suite, params["code"])
    assert row is not None
    tokens = await login(suite.client, ada)
    assert (row.app_id, str(row.persona_id), row.redirect_uri) == (app_id, tokens["persona_id"], REDIRECT)
    assert (row.code_challenge, row.scope, row.used_at) == (pkce.challenge, "read", None)


async def test_a_second_app_signs_in_with_the_same_browser_without_the_password(suite, app_id, ada, web):
    await allow(web, await sign_in(web, app_id, ada, Pkce()))
    other = await make_app(suite, redirect_uris=["https://wiki.agency.example/cb"], name="Wiki")
    page = await web.get(authorize_url(other, "https://wiki.agency.example/cb", Pkce()))
    assert "Allow Wiki?" in page.text and form_for(page.text, "consent")
    assert_page_headers(page, "https://wiki.agency.example")
    answered = await allow(web, page)
    assert "code" in returned(answered.headers["location"], "https://wiki.agency.example/cb")
    async with browser(suite) as stranger:  # another browser has no session
        page = await stranger.get(authorize_url(other, "https://wiki.agency.example/cb", Pkce()))
        assert form_for(page.text, "signin")


# -- the app and its redirect URI --------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT + "/more",
        REDIRECT[:-1],
        REDIRECT + "?next=https://evil.example",
        REDIRECT + "#x",
        REDIRECT.upper(),
        "https://board.agency.example:8443/callback",
        "http://board.agency.example/callback",
        "https://board.agency.example.evil.example/callback",
        "https://board.agency.example@evil.example/callback",
        "https://evil.example/callback",
        "//evil.example/callback",
        "/callback",
        "http://localhost/callback",
        "http://127.0.0.1:5000/callback/x",
        "http://127.0.0.2/callback",
        "",
        None,
    ],
)
async def test_a_redirect_uri_not_registered_exactly_gets_an_error_page_and_no_redirect(
    suite, app_id, web, redirect_uri
):
    resp = await web.get(authorize_url(app_id, redirect_uri, Pkce(), response_type="token"))
    assert resp.status_code == 400
    assert "location" not in resp.headers
    assert_page_headers(resp)
    assert 'role="alert"' in resp.text and "not registered" in resp.text


async def test_a_loopback_redirect_uri_matches_on_any_port_and_a_repeated_one_not_at_all(suite, app_id, web):
    ok = await web.get(authorize_url(app_id, "http://127.0.0.1:51234/callback", Pkce()))
    assert ok.status_code == 200 and form_for(ok.text, "signin")
    assert_page_headers(ok, "http://127.0.0.1:51234")
    query = authorize_query(app_id, REDIRECT, Pkce())
    twice = f"{AUTHORIZE}?{urlencode(query)}&{urlencode({'redirect_uri': 'https://evil.example/cb'})}"
    resp = await web.get(twice)
    assert resp.status_code == 400 and "location" not in resp.headers


async def test_an_unknown_or_revoked_app_gets_an_error_page(suite, web):
    revoked = await make_app(suite, revoked=True)
    for client_id in (revoked, "app_unknown", "", "x" * 41, None):
        resp = await web.get(authorize_url(client_id, REDIRECT, Pkce()))  # type: ignore[arg-type]
        assert resp.status_code == 400 and "location" not in resp.headers
        assert "not known" in resp.text
        assert_page_headers(resp)


# -- errors that go back to the app -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"scope": "read admin"}, "invalid_scope"),
        ({"prompt": "none"}, "invalid_request"),
        ({"state": "s" * 501}, "invalid_request"),
    ],
)
async def test_a_faulty_request_goes_back_to_the_app_with_its_error_state_and_issuer(
    suite, app_id, web, changes, error
):
    query = authorize_query(app_id, REDIRECT, Pkce(), **changes)
    resp = await web.get(f"{AUTHORIZE}?{urlencode(query)}")
    assert resp.status_code == 303
    params = returned(resp.headers["location"], REDIRECT)
    assert params["error"] == error and params["error_description"]
    assert params["iss"] == ISSUER
    if "state" in changes:  # too long to echo
        assert "state" not in params
    else:
        assert params["state"] == query["state"]


async def test_an_error_keeps_the_query_of_the_registered_redirect_uri_and_a_repeated_field_is_refused(
    suite, web
):
    with_query = "https://board.agency.example/cb?tenant=7"
    app_id = await make_app(suite, redirect_uris=[with_query])
    query = authorize_query(app_id, with_query, Pkce(), response_type="token", state=None)
    resp = await web.get(f"{AUTHORIZE}?{urlencode(query)}")
    location = resp.headers["location"]
    assert location.startswith(with_query + "&")
    assert parse_qs(urlsplit(location).query)["tenant"] == ["7"]
    assert "state=" not in location
    twice = f"{AUTHORIZE}?{urlencode(authorize_query(app_id, with_query, Pkce()))}&scope=write"
    params = parse_qs(urlsplit((await web.get(twice)).headers["location"]).query)
    assert params["error"] == ["invalid_request"] and "scope" in params["error_description"][0]


async def test_every_post_checks_the_request_again(suite, app_id, ada, web):
    consent = await sign_in(web, app_id, ada, Pkce())
    evil = await web.post(
        AUTHORIZE, data=submission(consent.text, "consent", redirect_uri="https://evil.example/cb")
    )
    assert evil.status_code == 400 and "location" not in evil.headers
    wider = await web.post(AUTHORIZE, data=submission(consent.text, "consent", scope="read write admin"))
    assert returned(wider.headers["location"], REDIRECT)["error"] == "invalid_scope"
    plain = await web.post(AUTHORIZE, data=submission(consent.text, "consent", code_challenge_method="plain"))
    assert returned(plain.headers["location"], REDIRECT)["error"] == "invalid_request"
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(App).where(col(App.id) == app_id).values(revoked_at=utcnow()))
    revoked = await allow(web, consent)
    assert revoked.status_code == 400 and "location" not in revoked.headers
    assert await codes(suite) == 0


# -- CSRF and framing --------------------------------------------------------------------------


async def test_a_post_without_the_browsers_csrf_token_or_from_another_origin_is_refused(
    suite, app_id, ada, web
):
    page = await web.get(authorize_url(app_id, REDIRECT, Pkce()))
    good = submission(page.text, "signin", email=ada, password=PASSWORD)
    forged = [
        ({**good, "csrf": "x" * 43}, {}, None),
        ({k: v for k, v in good.items() if k != "csrf"}, {}, None),
        (good, {"Origin": "https://evil.example"}, None),
        (good, {"Origin": "null"}, None),
        (good, {}, "no cookie"),
    ]
    for data, headers, cookie in forged:
        async with browser(suite) as other:  # a browser that holds the page's CSRF cookie, or none
            jar = {} if cookie else {"Cookie": f"gs_csrf={web.cookies['gs_csrf']}"}
            resp = await other.post(AUTHORIZE, data=data, headers={**headers, **jar})
        assert resp.status_code == 403, (data, headers, cookie)
        assert "location" not in resp.headers and "set-cookie" not in resp.headers
        assert_page_headers(resp)
    # the same form, from the page's own origin as identity sees it
    own = await web.post(AUTHORIZE, data=good, headers={"Origin": "http://identity"})
    assert own.status_code == 303
    async with suite.identity.state.database.sessionmaker() as session:
        assert len((await session.scalars(select(SignInSession))).all()) == 1


async def test_the_published_origin_is_the_pages_own_and_https_makes_the_cookies_secure(database_urls):
    public = "https://social.agency.example"
    async with build_suite(database_urls, identity={"public_url": public}) as suite:
        app_id = await make_app(suite)
        email = await register(suite.client, "ada")
        async with browser(suite, base_url="https://gateway") as web:
            page = await web.get(authorize_url(app_id, REDIRECT, Pkce()))
            assert "secure" in set_cookies(page)["gs_csrf"].lower()
            data = submission(page.text, "signin", email=email, password=PASSWORD)
            signed = await web.post(AUTHORIZE, data=data, headers={"Origin": public})
            assert signed.status_code == 303
            assert "secure" in set_cookies(signed)["gs_session"].lower()
        # X-Forwarded-Proto from a peer that is not a trusted proxy is not believed
        untrusted = httpx.ASGITransport(app=suite.identity, client=("203.0.113.9", 4000))
        async with httpx.AsyncClient(transport=untrusted, base_url="http://identity") as direct:
            page = await direct.get(
                authorize_url(app_id, REDIRECT, Pkce()), headers={"X-Forwarded-Proto": "https"}
            )
            assert page.status_code == 200
            assert "secure" not in set_cookies(page)["gs_csrf"].lower()


# -- sign-in: one answer for every refusal, and the token endpoint's locks ----------------------


async def test_a_wrong_password_an_unknown_address_and_a_suspended_account_get_the_same_page(
    suite, app_id, web
):
    ada = await register(suite.client, "ada")
    bob = await register(suite.client, "bob")
    await set_account_status(suite, bob, "suspended")
    page = await web.get(authorize_url(app_id, REDIRECT, Pkce()))
    answers = []
    for email, password in ((ada, "not the password"), ("nobody@agency.example", PASSWORD), (bob, PASSWORD)):
        resp = await web.post(AUTHORIZE, data=submission(page.text, "signin", email=email, password=password))
        assert_page_headers(resp, "https://board.agency.example")
        answers.append((resp.status_code, resp.text.replace(email, "EMAIL"), "set-cookie" in resp.headers))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 400 and REFUSED in answers[0][1] and not answers[0][2]
    assert 'role="alert"' in answers[0][1]
    assert (
        await web.post(AUTHORIZE, data=submission(page.text, "signin"))
    ).status_code == 400  # nothing typed


async def test_failures_on_the_page_lock_the_token_endpoint_and_the_other_way_round(suite, app_id, web):
    ada = await register(suite.client, "ada")
    page = await web.get(authorize_url(app_id, REDIRECT, Pkce()))
    wrong = submission(page.text, "signin", email=ada, password="not the password")
    for _ in range(5):
        assert (await web.post(AUTHORIZE, data=wrong)).status_code == 400
    token = await suite.client.post(
        TOKEN, data={"grant_type": "password", "username": ada, "password": PASSWORD}
    )
    assert token.status_code == 429 and int(token.headers["retry-after"]) > 0

    bob = await register(suite.client, "bob")
    for _ in range(5):
        resp = await suite.client.post(
            TOKEN, data={"grant_type": "password", "username": bob, "password": "not the password"}
        )
        assert resp.status_code == 400
    locked = await web.post(AUTHORIZE, data=submission(page.text, "signin", email=bob, password=PASSWORD))
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in locked.text and "set-cookie" not in locked.headers


# -- the session -----------------------------------------------------------------------------


async def test_a_session_of_an_account_no_longer_active_counts_as_none(suite, app_id, ada, web):
    consent = await sign_in(web, app_id, ada, Pkce())
    await set_account_status(suite, ada, "suspended")
    page = await web.get(authorize_url(app_id, REDIRECT, Pkce()))
    assert form_for(page.text, "signin")
    refused = await allow(web, consent)
    assert refused.status_code == 400 and "location" not in refused.headers
    assert form_for(refused.text, "signin") and "no longer signed in" in refused.text
    await set_account_status(suite, ada, "active")
    assert (await allow(web, consent)).status_code == 303  # the session itself lives on
    assert await codes(suite) == 1


async def test_a_session_ends_when_it_expires_or_the_password_changes(suite, app_id, ada, web):
    consent = await sign_in(web, app_id, ada, Pkce())
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Account).where(col(Account.email) == ada).values(password_changed_at=utcnow())
        )
    assert (await allow(web, consent)).status_code == 400
    consent = await sign_in(web, app_id, ada, Pkce())
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(update(SignInSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert form_for((await web.get(authorize_url(app_id, REDIRECT, Pkce()))).text, "signin")
    assert (await allow(web, consent)).status_code == 400
    assert await codes(suite) == 0


async def test_prompt_login_asks_for_the_password_again_and_replaces_the_session(suite, app_id, ada, web):
    await sign_in(web, app_id, ada, Pkce())
    first = web.cookies["gs_session"]
    page = await web.get(authorize_url(app_id, REDIRECT, Pkce(), prompt="login"))
    form = form_for(page.text, "signin")
    assert "prompt" not in form.fields  # met once the password is given
    signed = await web.post(AUTHORIZE, data=submission(page.text, "signin", email=ada, password=PASSWORD))
    assert "prompt" not in follow(signed)
    assert web.cookies["gs_session"] != first
    async with suite.identity.state.database.sessionmaker() as session:
        old = await session.scalar(select(SignInSession).where(col(SignInSession.digest) == digest(first)))
        assert old is not None and old.revoked_at is not None
    consent = await web.get(follow(signed))
    assert form_for(consent.text, "consent")


async def test_deny_tells_the_app_and_signing_out_ends_the_session(suite, app_id, ada, web):
    pkce = Pkce()
    consent = await sign_in(web, app_id, ada, pkce)
    state = form_for(consent.text, "deny").fields["state"]
    denied = await web.post(AUTHORIZE, data=submission(consent.text, "deny"))
    params = returned(denied.headers["location"], REDIRECT)
    assert (params["error"], params["state"], params["iss"]) == ("access_denied", state, ISSUER)
    assert "code" not in params
    out = await web.post(AUTHORIZE, data=submission(consent.text, "signout"))
    assert out.status_code == 200 and form_for(out.text, "signin")
    cleared = set_cookies(out)["gs_session"].lower()
    assert "max-age=0" in cleared and "path=/oauth" in cleared
    async with suite.identity.state.database.sessionmaker() as session:
        (row,) = (await session.scalars(select(SignInSession))).all()
        assert row.revoked_at is not None
    again = await web.get(authorize_url(app_id, REDIRECT, pkce))
    assert form_for(again.text, "signin")
    assert await codes(suite) == 0


# -- the personas offered -------------------------------------------------------------------------


async def test_only_the_owners_active_personas_are_offered_and_accepted(suite, app_id, web):
    ada = await with_personal(suite.client, "ada")
    bob = await register(suite.client, "bob")
    consent = await sign_in(web, app_id, ada["email"], Pkce())
    assert form_for(consent.text, "consent").radios == {"persona": ["professional", "personal"]}
    assert form_for(consent.text, "consent").checked == {"persona": "professional"}
    assert "ada_home" in consent.text
    personal = await allow(web, consent, "personal")
    row = await code_row(suite, returned(personal.headers["location"], REDIRECT)["code"])
    assert row is not None and str(row.persona_id) == ada["personal_id"]

    async with browser(suite) as bobs:
        consent = await sign_in(bobs, app_id, bob, Pkce())
        assert form_for(consent.text, "consent").radios == {"persona": ["professional"]}
        assert "ada" not in consent.text.replace(app_id, "")
        for kind in ("personal", "robot", ada["personal_id"]):
            refused = await allow(bobs, consent, kind)
            assert refused.status_code == 400 and "location" not in refused.headers
            assert "cannot sign in to apps now" in refused.text
    assert await codes(suite) == 1


async def test_a_persona_held_by_moderation_is_not_offered_and_refused_if_posted(suite, app_id, web):
    ada = await with_personal(suite.client, "ada")
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Persona).where(col(Persona.id) == uuid.UUID(ada["pro_id"])).values(moderation_hold=True)
        )
    consent = await sign_in(web, app_id, ada["email"], Pkce())
    assert form_for(consent.text, "consent").radios == {"persona": ["personal"]}
    refused = await web.post(AUTHORIZE, data=submission(consent.text, "consent", persona="professional"))
    assert refused.status_code == 400 and "location" not in refused.headers
    assert 'role="alert"' in refused.text
    assert await codes(suite) == 0
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Persona).where(col(Persona.account_id).is_not(None)).values(moderation_hold=True)
        )
    none = await web.get(authorize_url(app_id, REDIRECT, Pkce()))
    assert "None of your personas can sign in" in none.text
    assert "consent" not in form_for(none.text, "deny").actions()
