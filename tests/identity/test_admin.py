"""Administration: accounts, roles, suspension, the audit log and the audited link lookup."""

from __future__ import annotations

from tests.helpers import admin, auth, login, person, register, with_personal
from tests.tokens import claims, sign

TOKEN = "/api/v1/auth/token"


async def _account_id(suite, token: str) -> str:
    return (await suite.client.get("/api/v1/me", headers=auth(token))).json()["account_id"]


async def test_admin_routes_are_403_for_everyone_else(suite):
    token, persona_id = await person(suite.client, "ada")
    forged = sign(suite.keys.active, claims(persona_id, roles=["admin"]))  # role in the token only
    for headers in (auth(token), auth(forged)):
        for method, path in (
            ("GET", "/api/v1/admin/accounts"),
            ("GET", "/api/v1/admin/audit"),
            ("GET", "/api/v1/admin/clients"),
            ("POST", "/api/v1/admin/persona-links"),
        ):
            resp = await suite.client.request(
                method, path, headers=headers, json={} if method == "POST" else None
            )
            assert resp.status_code == 403, (method, path, resp.text)


async def test_admin_lists_accounts_without_personal_personas(suite):
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada")
    page = (await suite.client.get("/api/v1/admin/accounts", params={"limit": 1}, headers=auth(root))).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    listed = (
        await suite.client.get("/api/v1/admin/accounts", params={"q": "ada@"}, headers=auth(root))
    ).json()
    [item] = listed["items"]
    assert item["professional"]["id"] == ada["pro_id"]
    assert ada["personal_id"] not in str(listed)
    assert "ada_home" not in str(listed)


async def test_suspension_stops_tokens_at_once_and_is_audited(suite):
    root, _ = await admin(suite)
    token, _ = await person(suite.client, "ada")
    account_id = await _account_id(suite, token)
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"status": "suspended", "reason": "Investigation of a reported leak."},
        headers=auth(root),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "suspended"
    assert (await suite.client.get("/api/v1/me", headers=auth(token))).status_code == 401
    denied = await suite.client.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": "ada@agency.example",
            "password": "correct horse battery staple",
        },
    )
    assert denied.status_code == 400
    audit = (await suite.client.get("/api/v1/admin/audit", headers=auth(root))).json()["items"]
    assert audit[0]["action"] == "account.suspended"
    assert audit[0]["reason"] == "Investigation of a reported leak."
    assert audit[0]["account_id"] == account_id

    back = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"status": "active", "reason": "Investigation closed, no fault."},
        headers=auth(root),
    )
    assert back.json()["status"] == "active"
    await login(suite.client, "ada@agency.example")


async def test_status_change_needs_a_reason_and_admins_cannot_suspend_themselves(suite):
    root, _ = await admin(suite)
    own = await _account_id(suite, root)
    token, _ = await person(suite.client, "ada")
    other = await _account_id(suite, token)
    assert (
        await suite.client.patch(
            f"/api/v1/admin/accounts/{other}", json={"status": "suspended"}, headers=auth(root)
        )
    ).status_code == 422
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{own}",
        json={"status": "suspended", "reason": "Testing the rule here."},
        headers=auth(root),
    )
    assert resp.status_code == 403
    unknown = await suite.client.patch(
        "/api/v1/admin/accounts/00000000-0000-7000-8000-000000000000", json={"roles": []}, headers=auth(root)
    )
    assert unknown.status_code == 404


async def test_granted_roles_reach_new_tokens(suite):
    root, _ = await admin(suite)
    token, _ = await person(suite.client, "ada")
    account_id = await _account_id(suite, token)
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}", json={"roles": ["moderator"]}, headers=auth(root)
    )
    assert resp.json()["roles"] == ["moderator"]
    fresh = await login(suite.client, "ada@agency.example")
    from jose import jwt

    assert jwt.get_unverified_claims(fresh["access_token"])["roles"] == ["moderator"]
    assert (
        await suite.client.patch(
            f"/api/v1/admin/accounts/{account_id}", json={"roles": ["owner"]}, headers=auth(root)
        )
    ).status_code == 422


async def test_link_lookup_needs_a_reason_and_is_audited(suite):
    root, _ = await admin(suite)
    ada = await with_personal(suite.client, "ada")
    missing = await suite.client.post(
        "/api/v1/admin/persona-links", json={"persona_id": ada["personal_id"]}, headers=auth(root)
    )
    assert missing.status_code == 422
    resp = await suite.client.post(
        "/api/v1/admin/persona-links",
        json={"persona_id": ada["personal_id"], "reason": "Court order 2026-114 requires it."},
        headers=auth(root),
    )
    assert resp.status_code == 200
    assert resp.json()["professional_persona_id"] == ada["pro_id"]
    assert resp.json()["personal_persona_id"] == ada["personal_id"]
    [entry] = (await suite.client.get("/api/v1/admin/audit", headers=auth(root))).json()["items"][:1]
    assert entry["action"] == "persona.link_resolved"
    assert entry["reason"] == "Court order 2026-114 requires it."


async def test_first_admin_comes_from_the_operator_command(suite, capsys):
    from services.identity import manage

    email = await register(suite.client, "ada")
    url = suite.identity.state.settings.database_url
    import os

    os.environ["IDENTITY_DATABASE_URL"] = url
    try:
        import anyio

        code = await anyio.to_thread.run_sync(manage.main, ["grant-role", email, "admin"])
    finally:
        del os.environ["IDENTITY_DATABASE_URL"]
    assert code == 0
    tokens = await login(suite.client, email)
    assert (
        await suite.client.get("/api/v1/admin/accounts", headers=auth(tokens["access_token"]))
    ).status_code == 200
