"""The authorization-code flow end to end (decision 0035), on the real processes through the
gateway: an administrator registers two apps; a person's browser (an httpx client that keeps
cookies and reads the pages' forms) signs in on identity's pages, chooses a persona and comes
back to the app's loopback redirect URI, unchanged by the gateway, with a code; the app
exchanges it with its PKCE verifier and acts as that persona. The second app is signed in by the
same browser without the password."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.people import PASSWORD, Person, bearer, grant
from tests.oauth_forms import AUTHORIZE, Pkce, authorize_query, form_for, returned, set_cookies, submission
from tests.processes import LIMITS, Running, free_port, launched

pytestmark = pytest.mark.e2e
REDIRECT = "http://127.0.0.1/callback"  # registered; the app listens on a port of its own


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A suite of this module's own: the flow makes more sign-in requests (pages and token
    endpoint, one client address) than the gateway's default 20 a minute would leave room for
    beside other modules' on the shared suite, so the limit is raised, not switched off."""
    limits = {"auth": {"per_address": 100}, "default": {"per_token": 600, "per_address": 1200}}
    env = {"GATEWAY_RATE_LIMITS": json.dumps(limits)}
    with launched(tmp_path_factory.mktemp("code-flow") / "var", env=env) as running:
        yield running
    assert running.process.returncode == 0, running.tail(30)


def _register_app(client: httpx.Client, admin: Person, name: str) -> str:
    resp = client.post(
        "/api/v1/admin/apps",
        json={"name": name, "kind": "public", "redirect_uris": [REDIRECT], "scopes": ["read", "write"]},
        headers=admin.headers("professional"),
    )
    assert resp.status_code == 201, resp.text
    app_id: str = resp.json()["id"]
    return app_id


def _follow(resp: httpx.Response) -> str:
    assert resp.status_code == 303, resp.text
    return str(resp.url.join(resp.headers["location"]))


def _consent(web: httpx.Client, consent: httpx.Response, persona: str, redirect_uri: str) -> dict[str, str]:
    """Allow, as ``persona``; what the app receives at its redirect URI."""
    answered = web.post(AUTHORIZE, data=submission(consent.text, "consent", persona=persona))
    assert answered.status_code == 303, answered.text
    assert answered.headers["location"].startswith(redirect_uri + "?")  # not rewritten by the gateway
    return returned(answered.headers["location"], redirect_uri)


def _exchange(client: httpx.Client, app_id: str, code: str, redirect_uri: str, pkce: Pkce) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": app_id,
            "code_verifier": pkce.verifier,
        },
    )
    assert resp.status_code == 200, resp.text
    tokens: dict[str, Any] = resp.json()
    return tokens


def test_a_browser_signs_in_to_two_apps_as_the_persona_it_chose_each_time(suite: Running) -> None:
    running = suite
    with httpx.Client(base_url=running.url(), timeout=30, limits=LIMITS) as client:
        admin, ada = Person(client, running, "root"), Person(client, running, "ada")
        grant(running, admin, "admin")
        board, wiki = _register_app(client, admin, "Team board"), _register_app(client, admin, "Wiki")
        issuer = client.get("/.well-known/openid-configuration").json()["issuer"]

    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    with (
        httpx.Client(base_url=running.url(), timeout=30, limits=LIMITS) as web,
        httpx.Client(base_url=running.url(), timeout=30, limits=LIMITS) as app,
    ):
        pkce = Pkce()
        query = authorize_query(board, redirect_uri, pkce)
        page = web.get(AUTHORIZE, params=query)
        assert page.status_code == 200, page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "gs_csrf" in set_cookies(page)
        signed = web.post(AUTHORIZE, data=submission(page.text, "signin", email=ada.email, password=PASSWORD))
        assert "gs_session" in set_cookies(signed)
        consent = web.get(_follow(signed))
        assert form_for(consent.text, "consent").radios == {"persona": ["professional", "personal"]}
        back = _consent(web, consent, "personal", redirect_uri)
        assert (back["state"], back["iss"]) == (query["state"], issuer)

        tokens = _exchange(app, board, back["code"], redirect_uri, pkce)
        assert (tokens["persona_id"], tokens["context"]) == (ada.ids["personal"], "personal")
        me = app.get("/api/v1/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200, me.text
        assert (me.json()["context"], me.json()["personal"]["id"]) == ("personal", ada.ids["personal"])
        assert me.json()["professional"] is None and me.json()["email"] is None
        replayed = app.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": back["code"],
                "redirect_uri": redirect_uri,
                "client_id": board,
                "code_verifier": pkce.verifier,
            },
        )
        assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"

        # the second app: the browser is signed in, so consent only
        pkce = Pkce()
        page = web.get(AUTHORIZE, params=authorize_query(wiki, redirect_uri, pkce))
        assert page.status_code == 200 and "Allow Wiki?" in page.text
        back = _consent(web, page, "professional", redirect_uri)
        tokens = _exchange(app, wiki, back["code"], redirect_uri, pkce)
        assert (tokens["persona_id"], tokens["context"]) == (ada.ids["professional"], "professional")
        me = app.get("/api/v1/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200, me.text
        assert (me.json()["email"], me.json()["professional"]["id"]) == (ada.email, ada.ids["professional"])
