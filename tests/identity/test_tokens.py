"""Tokens: persona-scoped claims, refresh rotation with reuse detection, revocation, client
credentials, key rotation, and single sign-on through an external provider."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid

from fastapi import FastAPI
from jose import jwt

from services.identity.keys import KeyRing, SigningKey
from tests.helpers import PASSWORD, admin, auth, login, person, register, with_personal
from tests.suite import build_suite
from tests.tokens import sign

TOKEN = "/api/v1/auth/token"


def _claims(token: str) -> dict:
    return jwt.get_unverified_claims(token)


async def test_access_token_names_a_persona_and_nothing_of_the_account(suite):
    email = await register(suite.client, "ada")
    tokens = await login(suite.client, email)
    claims = _claims(tokens["access_token"])
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == tokens["persona_id"]
    assert claims["ctx"] == "professional"
    assert {"iss", "aud", "exp", "iat", "jti", "scope", "roles"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 300
    me = (await suite.client.get("/api/v1/me", headers=auth(tokens["access_token"]))).json()
    raw = json.dumps(claims)
    assert email not in raw
    assert me["account_id"] not in raw


async def test_refresh_rotates_and_a_replayed_token_revokes_the_family(suite):
    email = await register(suite.client, "ada")
    first = await login(suite.client, email)
    resp = await suite.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert resp.status_code == 200
    second = resp.json()
    assert second["refresh_token"] != first["refresh_token"]
    replay = await suite.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # the whole family is gone, including the newest token
    after = await suite.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
    )
    assert after.status_code == 400


async def test_two_parallel_refreshes_with_one_token_yield_one_success(suite):
    email = await register(suite.client, "ada")
    tokens = await login(suite.client, email)
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    results = await asyncio.gather(*(suite.client.post(TOKEN, data=data) for _ in range(2)))
    assert sorted(r.status_code for r in results) == [200, 400]


async def test_refresh_token_switches_persona(suite):
    ada = await with_personal(suite.client, "ada")
    resp = await suite.client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": ada["refresh"], "persona": "professional"},
    )
    assert resp.status_code == 200
    assert _claims(resp.json()["access_token"])["sub"] == ada["pro_id"]
    assert _claims(resp.json()["access_token"])["ctx"] == "professional"


async def test_revoke_logs_out_and_unknown_tokens_still_answer_200(suite):
    email = await register(suite.client, "ada")
    tokens = await login(suite.client, email)
    assert (
        await suite.client.post("/api/v1/auth/revoke", data={"token": tokens["refresh_token"]})
    ).status_code == 200
    resp = await suite.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert resp.status_code == 400
    assert (await suite.client.post("/api/v1/auth/revoke", data={"token": "never-issued"})).status_code == 200


async def test_unknown_grant_and_missing_fields_are_oauth_errors(suite):
    resp = await suite.client.post(TOKEN, data={"grant_type": "implicit"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "unsupported_grant_type"
    resp = await suite.client.post(TOKEN, data={"grant_type": "password"})
    assert resp.json()["error"] == "invalid_request"
    resp = await suite.client.post(
        TOKEN, data={"grant_type": "password", "username": "a@b.c", "password": "x", "persona": "admin"}
    )
    assert resp.status_code == 422


async def test_personal_token_needs_a_personal_persona(suite):
    email = await register(suite.client, "ada")
    resp = await suite.client.post(
        TOKEN, data={"grant_type": "password", "username": email, "password": PASSWORD, "persona": "personal"}
    )
    assert resp.status_code == 400


async def _client(suite, scopes=("scim",)):
    token, _ = await admin(suite)
    resp = await suite.client.post(
        "/api/v1/admin/clients", json={"name": "HR sync", "scopes": list(scopes)}, headers=auth(token)
    )
    assert resp.status_code == 201, resp.text
    return token, resp.json()


async def test_client_credentials_grant(suite):
    _, client = await _client(suite, scopes=("scim", "webhooks"))
    resp = await suite.client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "scope": "scim",
        },
    )
    assert resp.status_code == 200, resp.text
    claims = _claims(resp.json()["access_token"])
    assert claims["sub"] == f"client:{client['client_id']}"
    assert claims["scope"] == "scim"
    assert "ctx" not in claims
    assert "refresh_token" not in resp.json()
    # HTTP Basic works too
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    resp = await suite.client.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert resp.status_code == 200
    assert set(_claims(resp.json()["access_token"])["scope"].split()) == {"scim", "webhooks"}
    # a client's token is not a persona's
    timeline = await suite.client.get("/api/v1/timelines/home", headers=auth(resp.json()["access_token"]))
    assert timeline.status_code == 403


async def test_client_credentials_refuses_wrong_secret_other_scope_and_revoked_clients(suite):
    admin_token, client = await _client(suite)
    data = {"grant_type": "client_credentials", "client_id": client["client_id"]}
    wrong = await suite.client.post(TOKEN, data=data | {"client_secret": "wrong"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    unknown = await suite.client.post(TOKEN, data={**data, "client_id": "cl_nobody", "client_secret": "x"})
    assert unknown.status_code == 401
    scope = await suite.client.post(
        TOKEN, data=data | {"client_secret": client["client_secret"], "scope": "webhooks"}
    )
    assert scope.json()["error"] == "invalid_scope"
    revoked = await suite.client.delete(
        f"/api/v1/admin/clients/{client['client_id']}", headers=auth(admin_token)
    )
    assert revoked.status_code == 204
    after = await suite.client.post(TOKEN, data=data | {"client_secret": client["client_secret"]})
    assert after.status_code == 401


async def test_signing_key_rotation_keeps_old_tokens_valid_and_rejects_unknown_keys(suite):
    old_token, _ = await person(suite.client, "ada")
    await suite.deliver()
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    await suite.client.get("/api/v1/timelines/home", headers=auth(old_token))  # feed has cached the old key
    # A refetch for an unknown key id is allowed once per 10 s by default (so random key ids
    # cannot make the verifiers hammer identity); this test need not wait that long.
    for app in (suite.gateway, suite.feed, suite.groups):
        app.state.verifier.keys.min_refresh_seconds = 0
    suite.keys.rotate()
    jwks = (await suite.client.get("http://identity/.well-known/jwks.json")).json()
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, suite.keys.active.kid}
    new_token, _ = await person(suite.client, "bob")
    await suite.deliver()
    assert jwt.get_unverified_header(new_token)["kid"] == suite.keys.active.kid
    for token in (old_token, new_token):
        for url in ("/api/v1/timelines/home", "http://identity/api/v1/me", "http://groups/api/v1/groups"):
            assert (await suite.client.get(url, headers=auth(token))).status_code == 200, url
    stranger = sign(SigningKey.generate(), _claims(new_token))
    assert (await suite.client.get("/api/v1/timelines/home", headers=auth(stranger))).status_code == 401
    old_key = next(k for k in suite.keys.keys if k.kid == old_kid)
    suite.keys.retire(old_kid)
    retired = sign(old_key, _claims(new_token))
    assert (await suite.client.get("http://identity/api/v1/me", headers=auth(retired))).status_code == 401


async def test_discovery_document(suite):
    doc = (await suite.client.get("/.well-known/openid-configuration")).json()
    assert doc["issuer"] == "http://identity"
    assert doc["jwks_uri"].endswith("/.well-known/jwks.json")
    assert "client_credentials" in doc["grant_types_supported"]


SSO_KEY = SigningKey.generate()


def _provider() -> FastAPI:
    app = FastAPI()

    @app.get("/jwks")
    async def jwks() -> dict:
        return {"keys": [SSO_KEY.public_jwk]}

    return app


def _id_token(**overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://sso.agency.example",
        "aud": "govsocial",
        "sub": str(uuid.uuid4()),
        "email": "ada@agency.example",
        "email_verified": True,
        "iat": now,
        "exp": now + 300,
    } | overrides
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, SSO_KEY.signer, algorithm="RS256", headers={"kid": SSO_KEY.kid})


async def test_single_sign_on_id_token_is_exchanged_for_our_tokens(database_urls):
    overrides = {
        "oidc_issuer": "https://sso.agency.example",
        "oidc_jwks_url": "http://sso/jwks",
        "oidc_audience": "govsocial",
    }
    async with build_suite(database_urls, identity=overrides) as suite:
        suite.router.mount("sso", _provider())
        email = await register(suite.client, "ada")
        exchange = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        }
        resp = await suite.client.post(
            TOKEN, data=exchange | {"subject_token": _id_token(email=email.upper())}
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["context"] == "professional"
        me = await suite.client.get("/api/v1/me", headers=auth(resp.json()["access_token"]))
        assert me.json()["email"] == email
        for bad in (
            _id_token(aud="someone-else"),
            _id_token(iss="https://evil.example"),
            _id_token(exp=int(time.time()) - 3600),
            _id_token(email_verified=False),
            _id_token(email="nobody@agency.example"),
            sign(SigningKey.generate(), {"iss": "https://sso.agency.example"}, kid=SSO_KEY.kid, typ="JWT"),
            "garbage",
        ):
            resp = await suite.client.post(TOKEN, data=exchange | {"subject_token": bad})
            assert resp.status_code == 400, bad
            assert resp.json()["error"] == "invalid_grant"


async def test_token_exchange_is_refused_without_a_configured_provider(suite):
    resp = await suite.client.post(
        TOKEN,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": _id_token(),
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        },
    )
    assert resp.json()["error"] == "unsupported_grant_type"


def test_a_key_folder_names_its_upcoming_keys(tmp_path):
    """``*.next.pem`` keys are published but sign nothing; the newest other key signs."""
    old, new = SigningKey.generate(), SigningKey.generate()
    (tmp_path / "2026-11-01.pem").write_bytes(old.private_pem)
    (tmp_path / "2027-02-01.next.pem").write_bytes(new.private_pem)
    ring = KeyRing.from_dir(tmp_path)
    assert ring.active.kid == old.kid and [k.kid for k in ring.keys] == [old.kid]
    assert [k["kid"] for k in ring.jwks()["keys"]] == [old.kid, new.kid]
    (tmp_path / "2027-02-01.next.pem").rename(tmp_path / "2027-02-01.pem")
    os.utime(tmp_path / "2027-02-01.pem")  # the newer file
    promoted = KeyRing.from_dir(tmp_path)
    assert promoted.active.kid == new.kid and promoted.upcoming == []


async def test_tokens_of_an_upcoming_key_verify_everywhere_before_it_signs(suite):
    """The rotation's first step: once every identity replica publishes the upcoming key, a
    replica that already signs with it is understood by all verifiers (no 401 window)."""
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    for app in (suite.gateway, suite.feed, suite.groups):
        app.state.verifier.keys.min_refresh_seconds = 0
    upcoming = SigningKey.generate()
    suite.keys.upcoming.append(upcoming)
    try:
        jwks = (await suite.client.get("http://identity/.well-known/jwks.json")).json()
        assert upcoming.kid in {k["kid"] for k in jwks["keys"]}
        fresh, _ = await person(suite.client, "bob")
        assert jwt.get_unverified_header(fresh)["kid"] == suite.keys.active.kid != upcoming.kid
        from_next_replica = sign(upcoming, _claims(token))
        for url in ("/api/v1/timelines/home", "http://identity/api/v1/me", "http://groups/api/v1/groups"):
            assert (await suite.client.get(url, headers=auth(from_next_replica))).status_code == 200, url
    finally:
        suite.keys.upcoming.remove(upcoming)


def test_a_signing_key_is_parsed_once_and_its_tokens_verify():
    """Each access token is signed with the key object made the first time: given the PEM text,
    python-jose would parse and check the RSA key again for every token (about 30 ms)."""
    key = SigningKey.generate()
    assert key.signer is key.signer
    token = jwt.encode({"sub": "someone"}, key.signer, algorithm="RS256", headers={"kid": key.kid})
    assert jwt.decode(token, key.public_jwk, algorithms=["RS256"]) == {"sub": "someone"}
    assert jwt.get_unverified_header(token)["kid"] == key.kid
