"""The token endpoint's authorization_code grant (decision 0035): a code redeemed once, by its
own app, with its redirect URI and its PKCE verifier, for a persona still active; the grant it
starts stays bound to the app, the persona and the scopes through every refresh."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from jose import jwt
from sqlalchemy import select, update

from kit.timeutil import utcnow
from services.identity.models import AuthorizationCode, Persona, RefreshToken
from services.identity.tokens import digest
from tests.helpers import admin, auth, person, with_personal
from tests.identity.oauth import (
    REDIRECT,
    VERIFIER,
    app_tokens,
    issue_code,
    redeem,
    refresh,
    register_app,
)


def _claims(token: str) -> dict:
    return jwt.get_unverified_claims(token)


async def _setup(suite, **app_fields):
    root, _ = await admin(suite)
    _, persona_id = await person(suite.client, "ada")
    app = await register_app(suite, root, **app_fields)
    return root, persona_id, app


async def test_a_code_gives_the_app_a_token_for_the_chosen_persona_and_refresh_keeps_it(suite):
    ada = await with_personal(suite.client, "ada")
    root, _ = await admin(suite)
    app = await register_app(suite, root)
    resp = await redeem(
        suite, await issue_code(suite, app["id"], ada["personal_id"], scope="read"), app["id"]
    )
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert tokens["persona_id"] == ada["personal_id"]
    assert tokens["context"] == "personal"
    assert tokens["scope"] == "read"
    claims = _claims(tokens["access_token"])
    assert claims["sub"] == ada["personal_id"] and claims["ctx"] == "personal"
    assert claims["azp"] == app["id"] and claims["scope"] == "read"
    assert claims["roles"] == []

    # the refresh keeps the persona and the scope, whatever `persona` would say
    again = await refresh(suite, tokens["refresh_token"], app["id"])
    assert again.status_code == 200, again.text
    renewed = again.json()
    assert renewed["persona_id"] == ada["personal_id"] and renewed["scope"] == "read"
    assert _claims(renewed["access_token"])["azp"] == app["id"]
    assert renewed["refresh_token"] != tokens["refresh_token"]
    # the token works where the persona's would
    me = await suite.client.get("/api/v1/me", headers=auth(renewed["access_token"]))
    assert me.status_code == 200 and me.json()["personal"]["id"] == ada["personal_id"]
    # and the family is the code's, bound to app, persona and scope
    async with suite.identity.state.database.sessionmaker() as session:
        rows = (await session.scalars(select(RefreshToken).where(RefreshToken.app_id == app["id"]))).all()
        assert len(rows) == 2 and len({r.family_id for r in rows}) == 1
        assert {str(r.persona_id) for r in rows} == {ada["personal_id"]}
        assert {r.scope for r in rows} == {"read"}
        assert rows[0].family_id.version == 4  # random: the owner sees it, and it shows no time


async def test_a_professional_app_token_carries_the_roles_and_both_scopes(suite):
    root, root_persona = await admin(suite)
    app = await register_app(suite, root)
    tokens = await app_tokens(suite, app["id"], root_persona)
    claims = _claims(tokens["access_token"])
    assert claims["roles"] == ["admin"] and claims["scope"] == "read write"
    listed = await suite.client.get("/api/v1/admin/apps", headers=auth(tokens["access_token"]))
    assert listed.status_code == 200


async def test_a_refresh_may_narrow_the_scope_but_never_widen_it(suite):
    _, persona_id, app = await _setup(suite)
    tokens = await app_tokens(suite, app["id"], persona_id)
    narrowed = await refresh(suite, tokens["refresh_token"], app["id"], scope="read")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "read"
    # the grant itself is whole: the next refresh may ask for write again
    whole = await refresh(suite, narrowed.json()["refresh_token"], app["id"])
    assert whole.json()["scope"] == "read write"

    read_only = await app_tokens(suite, app["id"], persona_id, scope="read")
    wider = await refresh(suite, read_only["refresh_token"], app["id"], scope="read write")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    # refused before it was used: the token still works
    assert (await refresh(suite, read_only["refresh_token"], app["id"])).status_code == 200


async def test_a_refresh_never_switches_persona(suite):
    ada = await with_personal(suite.client, "ada")
    root, _ = await admin(suite)
    app = await register_app(suite, root)
    tokens = await app_tokens(suite, app["id"], ada["pro_id"])
    switch = await refresh(suite, tokens["refresh_token"], app["id"], persona="personal")
    assert switch.status_code == 400 and switch.json()["error"] == "invalid_grant"
    same = await refresh(suite, tokens["refresh_token"], app["id"], persona="professional")
    assert same.status_code == 200 and same.json()["persona_id"] == ada["pro_id"]


async def test_only_the_app_holding_a_grant_refreshes_it(suite):
    root, persona_id, app = await _setup(suite)
    other = await register_app(suite, root, name="Other")
    tokens = await app_tokens(suite, app["id"], persona_id)
    for client_id in (None, other["id"], "app_unknown"):
        resp = await refresh(suite, tokens["refresh_token"], client_id)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant", client_id
    assert (await refresh(suite, tokens["refresh_token"], app["id"])).status_code == 200


async def test_pkce_is_required_and_must_match(suite):
    _, persona_id, app = await _setup(suite)
    code = await issue_code(suite, app["id"], persona_id)
    for verifier in (None, "", "w" * 43, VERIFIER + "x", "short"):
        resp = await redeem(suite, code, app["id"], verifier=verifier)
        assert resp.status_code == 400, verifier
        assert resp.json()["error"] == "invalid_grant", verifier
    # failed attempts did not use the code up: its own app, with the verifier, still can
    assert (await redeem(suite, code, app["id"])).status_code == 200


async def test_a_replayed_code_revokes_what_its_first_use_issued(suite):
    _, persona_id, app = await _setup(suite)
    code = await issue_code(suite, app["id"], persona_id)
    first = await redeem(suite, code, app["id"])
    assert first.status_code == 200
    replay = await redeem(suite, code, app["id"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    resp = await refresh(suite, first.json()["refresh_token"], app["id"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


async def test_of_two_parallel_redemptions_one_wins_and_its_grant_is_revoked(suite):
    _, persona_id, app = await _setup(suite)
    code = await issue_code(suite, app["id"], persona_id)
    results = await asyncio.gather(*(redeem(suite, code, app["id"]) for _ in range(2)))
    assert sorted(r.status_code for r in results) == [200, 400]
    [won] = [r for r in results if r.status_code == 200]
    assert (await refresh(suite, won.json()["refresh_token"], app["id"])).status_code == 400


async def test_a_code_given_to_another_app_is_refused(suite):
    root, persona_id, app = await _setup(suite)
    other = await register_app(suite, root, name="Other")
    code = await issue_code(suite, app["id"], persona_id)
    resp = await redeem(suite, code, other["id"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    assert (await redeem(suite, code, app["id"])).status_code == 200


async def test_unknown_and_expired_codes_are_refused(suite):
    _, persona_id, app = await _setup(suite)
    resp = await redeem(suite, "gsc_never-issued", app["id"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    resp = await redeem(suite, "", app["id"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    code = await issue_code(suite, app["id"], persona_id)
    async with suite.identity.state.database.sessionmaker() as session:
        await session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.digest == digest(code))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    resp = await redeem(suite, code, app["id"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


async def test_the_redirect_uri_must_be_the_codes(suite):
    _, persona_id, app = await _setup(suite)
    code = await issue_code(suite, app["id"], persona_id)
    for uri in (None, REDIRECT + "/", "https://evil.example/callback"):
        resp = await redeem(suite, code, app["id"], redirect_uri=uri)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant", uri
    assert (await redeem(suite, code, app["id"])).status_code == 200


async def test_a_confidential_app_authenticates_with_its_secret(suite):
    _, persona_id, app = await _setup(suite, kind="confidential")
    secret = app["client_secret"]
    code = await issue_code(suite, app["id"], persona_id)
    for given in (None, "", "wrong-secret"):
        for basic in (False, True):
            resp = await redeem(suite, code, app["id"], secret=given, basic=basic)
            assert resp.status_code == 401, (given, basic)
            assert resp.json()["error"] == "invalid_client"
            assert resp.headers["www-authenticate"].startswith("Basic")
    with_basic = await redeem(suite, code, app["id"], secret=secret, basic=True)
    assert with_basic.status_code == 200, with_basic.text
    form = await redeem(suite, await issue_code(suite, app["id"], persona_id), app["id"], secret=secret)
    assert form.status_code == 200, form.text
    # refreshing needs the secret too
    token = form.json()["refresh_token"]
    assert (await refresh(suite, token, app["id"])).status_code == 401
    assert (await refresh(suite, token, app["id"], client_secret="nope")).status_code == 401
    assert (await refresh(suite, token, app["id"], client_secret=secret)).status_code == 200


async def test_an_unknown_app_is_an_invalid_client(suite):
    _, persona_id, app = await _setup(suite)
    code = await issue_code(suite, app["id"], persona_id)
    for client_id in (None, "app_unknown", "x" * 40):
        resp = await redeem(suite, code, client_id)
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client", client_id


async def test_a_suspended_account_gets_no_token_for_its_code(suite):
    root, persona_id, app = await _setup(suite)
    code = await issue_code(suite, app["id"], persona_id)
    async with suite.identity.state.database.sessionmaker() as session:
        persona = await session.get(Persona, uuid.UUID(persona_id))
        account_id = persona.account_id
    resp = await suite.client.patch(
        f"/api/v1/admin/accounts/{account_id}",
        json={"status": "suspended", "reason": "Suspended while the case is looked at."},
        headers=auth(root),
    )
    assert resp.status_code == 200, resp.text
    resp = await redeem(suite, code, app["id"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    # and the code is used up
    async with suite.identity.state.database.sessionmaker() as session:
        row = await session.get(AuthorizationCode, digest(code))
        assert row is not None and row.used_at is not None


async def test_a_persona_held_by_moderation_gets_no_token_nor_refresh(suite):
    _, persona_id, app = await _setup(suite)
    tokens = await app_tokens(suite, app["id"], persona_id)
    code = await issue_code(suite, app["id"], persona_id)

    async def hold(value: bool) -> None:
        async with suite.identity.state.database.sessionmaker() as session:
            persona = await session.get(Persona, uuid.UUID(persona_id))
            persona.moderation_hold = value
            await session.commit()

    await hold(True)
    resp = await redeem(suite, code, app["id"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    resp = await refresh(suite, tokens["refresh_token"], app["id"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    await hold(False)
    # the grant comes back with the persona; the code, used up, does not
    assert (await refresh(suite, tokens["refresh_token"], app["id"])).status_code == 200
    assert (await redeem(suite, code, app["id"])).status_code == 400


async def test_a_revoked_app_redeems_nothing_and_refreshes_nothing(suite):
    root, persona_id, app = await _setup(suite)
    tokens = await app_tokens(suite, app["id"], persona_id)
    code = await issue_code(suite, app["id"], persona_id)
    assert (
        await suite.client.delete(f"/api/v1/admin/apps/{app['id']}", headers=auth(root))
    ).status_code == 204
    resp = await redeem(suite, code, app["id"])
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    resp = await refresh(suite, tokens["refresh_token"], app["id"])
    assert resp.status_code in (400, 401)
    assert resp.json()["error"] in ("invalid_grant", "invalid_client")


async def test_password_families_still_switch_persona_and_ignore_a_client_id(suite):
    ada = await with_personal(suite.client, "ada")
    root, _ = await admin(suite)
    app = await register_app(suite, root)
    resp = await refresh(suite, ada["refresh"], app["id"], persona="professional")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["persona_id"] == ada["pro_id"]
    assert "azp" not in _claims(body["access_token"])
    assert body["scope"] == ""


async def test_a_replayed_app_refresh_token_revokes_the_grant_whoever_sends_it(suite):
    _, persona_id, app = await _setup(suite)
    first = await app_tokens(suite, app["id"], persona_id)
    rotated = await refresh(suite, first["refresh_token"], app["id"])
    assert rotated.status_code == 200
    replay = await refresh(suite, first["refresh_token"], None)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    resp = await refresh(suite, rotated.json()["refresh_token"], app["id"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


async def test_expired_codes_go_a_day_late_and_expired_sign_in_sessions_at_once(suite):
    """The housekeeper's sweep: a code stays a day past its expiry (a replay within it still
    revokes the family), a sign-in session goes once expired, live ones stay."""
    from services.identity.models import SignInSession

    root, _ = await admin(suite)
    app = await register_app(suite, root)
    ada, ada_id = await person(suite.client, "ada")
    codes = [await issue_code(suite, app["id"], ada_id) for _ in range(3)]
    account_id = (await suite.client.get("/api/v1/me", headers=auth(ada))).json()["account_id"]
    now = utcnow()
    database = suite.identity.state.database
    async with database.sessionmaker() as session, session.begin():
        ages = (timedelta(days=2), timedelta(hours=1), -timedelta(seconds=30))
        for code, expired in zip(codes, ages, strict=True):
            await session.execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.digest == digest(code))  # type: ignore[arg-type]
                .values(expires_at=now - expired)
            )
        for name, expires in (("old", now - timedelta(seconds=1)), ("live", now + timedelta(hours=1))):
            session.add(
                SignInSession(digest=digest(name), account_id=uuid.UUID(account_id), expires_at=expires)
            )
    removed = await suite.identity.state.housekeeper.sweep()
    assert removed["expired authorization codes"] == 1
    assert removed["expired sign-in sessions"] == 1
    async with database.sessionmaker() as session:
        left = set((await session.scalars(select(AuthorizationCode.digest))).all())
        sessions = set((await session.scalars(select(SignInSession.digest))).all())
    assert left == {digest(codes[1]), digest(codes[2])}
    assert sessions == {digest("live")}
