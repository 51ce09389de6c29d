"""Apps people sign in to with the authorization-code flow (decision 0035), as administrators
register, list and revoke them: the redirect URI rules, a confidential app's secret shown once,
and revocation ending every grant and code the app holds."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.identity.models import App, AuthorizationCode, RefreshToken
from services.identity.passwords import Passwords
from tests.helpers import admin, auth, person
from tests.identity.oauth import REDIRECT, app_tokens, issue_code, redeem, refresh, register_app

APPS = "/api/v1/admin/apps"


async def test_only_administrators_manage_apps(suite):
    token, _ = await person(suite.client, "ada")
    for method, path in (
        ("GET", APPS),
        ("POST", APPS),
        ("GET", f"{APPS}/app_x"),
        ("DELETE", f"{APPS}/app_x"),
    ):
        body = {"name": "x", "kind": "public", "redirect_uris": [REDIRECT]} if method == "POST" else None
        resp = await suite.client.request(method, path, json=body, headers=auth(token))
        assert resp.status_code == 403, (method, path, resp.text)


async def test_a_public_app_has_no_secret_and_asks_for_both_scopes_by_default(suite):
    root, _ = await admin(suite)
    app = await register_app(suite, root, name="Intranet mobile")
    assert app["id"].startswith("app_") and len(app["id"]) <= 40
    assert app["kind"] == "public"
    assert app["client_secret"] is None
    assert app["scopes"] == ["read", "write"]
    assert app["redirect_uris"] == [REDIRECT]
    assert app["revoked_at"] is None
    shown = (await suite.client.get(f"{APPS}/{app['id']}", headers=auth(root))).json()
    assert shown == {k: v for k, v in app.items() if k != "client_secret"}
    audit = (await suite.client.get("/api/v1/admin/audit", headers=auth(root))).json()["items"]
    assert audit[0]["action"] == "app.created"
    assert audit[0]["details"]["app_id"] == app["id"]


async def test_a_confidential_apps_secret_is_shown_once_and_kept_as_a_hash(suite):
    root, _ = await admin(suite)
    app = await register_app(suite, root, kind="confidential", scopes=["read", "read"])
    secret = app["client_secret"]
    assert secret and len(secret) >= 40
    assert app["scopes"] == ["read"]
    shown = (await suite.client.get(f"{APPS}/{app['id']}", headers=auth(root))).json()
    assert "client_secret" not in shown
    listed = (await suite.client.get(APPS, headers=auth(root))).json()
    assert secret not in str(listed)
    async with suite.identity.state.database.sessionmaker() as session:
        stored = await session.get(App, app["id"])
        assert stored is not None and stored.secret_hash and secret not in stored.secret_hash
        passwords: Passwords = suite.identity.state.passwords
        assert await passwords.verify(secret, stored.secret_hash)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.agency.example/callback",
        "https://app.agency.example:8443/cb?tenant=agency",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:8123/callback",
        "http://[::1]:8123/callback",
        "http://localhost:3000/cb",
        "gov.agency.app:/oauth2redirect",
        "gov.agency.app:/cb",
    ],
)
async def test_accepted_redirect_uris(suite, uri):
    root, _ = await admin(suite)
    app = await register_app(suite, root, redirect_uris=[uri])
    assert app["redirect_uris"] == [uri]


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("/callback", "relative"),
        ("callback", "relative"),
        ("http://app.agency.example/callback", "plain http off the device"),
        ("http://10.0.0.5/callback", "plain http off the device"),
        ("https://app.agency.example/callback#done", "a fragment"),
        ("https://app.agency.example/callback#", "an empty fragment"),
        ("https://*.agency.example/callback", "a wildcard"),
        ("https://app.agency.example/*", "a wildcard"),
        ("https:///callback", "no host"),
        ("https://user:pw@app.agency.example/cb", "credentials"),
        ("https://app.agency.example:99999/cb", "a port out of range"),
        ("https://app.agency.example/a b", "a space"),
        ("https://app.agency.example/\x01", "a control character"),
        ("javascript:alert(1)", "a scheme that is not private-use"),
        ("myapp:/callback", "a private-use scheme without a dot"),
        ("gov.agency.app:", "a private-use scheme and nothing else"),
        ("https://app.agency.example/" + "a" * 2000, "too long"),
    ],
)
async def test_refused_redirect_uris_are_422_problems(suite, uri, why):
    root, _ = await admin(suite)
    resp = await suite.client.post(
        APPS, json={"name": "x", "kind": "public", "redirect_uris": [uri]}, headers=auth(root)
    )
    assert resp.status_code == 422, (why, resp.text)
    assert resp.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "kind": "public", "redirect_uris": []},
        {"name": "x", "kind": "public", "redirect_uris": [f"https://a.example/{i}" for i in range(11)]},
        {"name": "x", "kind": "native", "redirect_uris": [REDIRECT]},
        {"name": "x", "kind": "public", "redirect_uris": [REDIRECT], "scopes": ["admin"]},
        {"name": "x", "kind": "public", "redirect_uris": [REDIRECT], "scopes": []},
        {"name": "", "kind": "public", "redirect_uris": [REDIRECT]},
        {"name": "x" * 101, "kind": "public", "redirect_uris": [REDIRECT]},
        {"name": "x", "kind": "public", "redirect_uris": [REDIRECT], "secret": "mine"},
    ],
)
async def test_refused_app_bodies_are_422_problems(suite, body):
    root, _ = await admin(suite)
    resp = await suite.client.post(APPS, json=body, headers=auth(root))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_apps_are_listed_a_page_at_a_time(suite):
    root, _ = await admin(suite)
    made = {(await register_app(suite, root, name=f"App {i}"))["id"] for i in range(3)}
    first = await suite.client.get(APPS, params={"limit": 2}, headers=auth(root))
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert 'rel="next"' in first.headers["link"]
    rest = (
        await suite.client.get(APPS, params={"limit": 2, "cursor": page["next_cursor"]}, headers=auth(root))
    ).json()
    assert rest["next_cursor"] is None
    assert {a["id"] for a in page["items"] + rest["items"]} == made
    bad = await suite.client.get(APPS, params={"cursor": "nonsense"}, headers=auth(root))
    assert bad.status_code == 400


async def test_unknown_apps_are_404(suite):
    root, _ = await admin(suite)
    for method in ("GET", "DELETE"):
        resp = await suite.client.request(method, f"{APPS}/app_unknown", headers=auth(root))
        assert resp.status_code == 404, resp.text
    resp = await suite.client.get(f"{APPS}/{'a' * 41}", headers=auth(root))
    assert resp.status_code == 422


async def test_revoking_an_app_ends_its_grants_and_voids_its_codes(suite):
    root, root_persona = await admin(suite)
    _, ada_persona = await person(suite.client, "ada")
    app = await register_app(suite, root)
    other = await register_app(suite, root, name="Other")
    granted = await app_tokens(suite, app["id"], ada_persona)
    kept = await app_tokens(suite, other["id"], ada_persona)
    pending = await issue_code(suite, app["id"], root_persona)

    resp = await suite.client.delete(f"{APPS}/{app['id']}", headers=auth(root))
    assert resp.status_code == 204
    assert (await suite.client.delete(f"{APPS}/{app['id']}", headers=auth(root))).status_code == 204
    shown = (await suite.client.get(f"{APPS}/{app['id']}", headers=auth(root))).json()
    assert shown["revoked_at"] is not None

    async with suite.identity.state.database.sessionmaker() as session:
        rows = (await session.scalars(select(RefreshToken).where(RefreshToken.app_id == app["id"]))).all()
        assert rows and all(r.revoked_at is not None for r in rows)
        codes = (
            await session.scalars(select(AuthorizationCode).where(AuthorizationCode.app_id == app["id"]))
        ).all()
        assert all(c.used_at is not None for c in codes)  # only the redeemed one is left
    assert (await refresh(suite, granted["refresh_token"], app["id"])).status_code in (400, 401)
    assert (await redeem(suite, pending, app["id"])).json()["error"] == "invalid_client"
    # another app's grant is untouched
    assert (await refresh(suite, kept["refresh_token"], other["id"])).status_code == 200
    audit = (await suite.client.get("/api/v1/admin/audit", headers=auth(root))).json()["items"]
    assert [e["action"] for e in audit].count("app.revoked") == 1


async def test_the_operator_registers_an_app_without_a_token(suite, capsys, monkeypatch):
    """`python -m services.identity.manage create-app`, for the tour and a first app: public by
    default, audited with the actor ``operator``, and a bad redirect URI refused before anything
    is written."""
    import anyio

    from services.identity import manage
    from services.identity.models import AuditEntry

    monkeypatch.setenv("IDENTITY_DATABASE_URL", suite.identity.state.settings.database_url)
    argv = ["create-app", "--name", "Tour", "--redirect-uri", "http://127.0.0.1/callback"]
    assert await anyio.to_thread.run_sync(manage.main, argv) == 0
    app_id = capsys.readouterr().out.strip()
    bad = ["create-app", "--name", "Bad", "--redirect-uri", "http://intranet.example/cb"]
    assert await anyio.to_thread.run_sync(manage.main, bad) == 2
    assert "redirect_uris" in capsys.readouterr().err
    async with suite.identity.state.database.sessionmaker() as session:
        apps = (await session.scalars(select(App))).all()
        assert [(a.id, a.kind, a.redirect_uris, a.secret_hash) for a in apps] == [
            (app_id, "public", ["http://127.0.0.1/callback"], None)
        ]
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "app.created"))
        assert entry is not None and entry.actor == "operator"
