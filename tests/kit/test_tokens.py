"""Bearer-token verification (RFC 8725): every bad token is a 401 with WWW-Authenticate,
never a 500, both at the gateway and at each service behind it."""

from __future__ import annotations

import time

import pytest

from services.identity.keys import SigningKey
from tests.helpers import auth, login, person, register
from tests.tokens import b64, claims, hs256_with_public_key, sign, unsigned

PROTECTED = {
    "gateway": ("gateway", "/api/v1/timelines/home"),
    "feed": ("feed", "/api/v1/timelines/home"),
    "groups": ("groups", "/api/v1/groups"),
    "identity": ("identity", "/api/v1/personas"),
}
ATTACKER = SigningKey.generate()


@pytest.fixture(params=sorted(PROTECTED))
def target(request, suite):
    host, path = PROTECTED[request.param]

    async def get(headers: dict[str, str]):
        return await suite.client.get(f"http://{host}{path}", headers=headers)

    return get


def _assert_401(resp):
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["www-authenticate"].startswith("Bearer")


def _hostile(suite) -> dict[str, str]:
    key = suite.keys.active
    now = int(time.time())
    return {
        "alg none": unsigned(claims()),
        "alg None": unsigned(claims(), alg="None"),
        "alg NONE": unsigned(claims(), alg="NONE"),
        "HS256 keyed with the public PEM": hs256_with_public_key(key, claims()),
        "HS256 keyed with the public DER": hs256_with_public_key(key, claims(), der=True),
        "attacker's key, real kid": sign(ATTACKER, claims(), kid=key.kid),
        "attacker's key, own kid": sign(ATTACKER, claims()),
        "unknown kid": sign(key, claims(), kid="no-such-key"),
        "path traversal kid": sign(key, claims(), kid="../../dev/null"),
        "expired an hour ago": sign(key, claims(iat=now - 7200, exp=now - 3600)),
        "expired beyond leeway": sign(key, claims(iat=now - 400, exp=now - 31)),
        "no exp": sign(key, claims(exp=None)),
        "no aud": sign(key, claims(aud=None)),
        "wrong aud": sign(key, claims(aud="someone-else")),
        "wrong iss": sign(key, claims(iss="https://evil.example")),
        "no jti": sign(key, claims(jti=None)),
        "nbf in the future": sign(key, claims(nbf=now + 3600)),
        "ID-token typ": sign(key, claims(), typ="JWT"),
        "bad ctx": sign(key, claims(ctx="admin")),
        "sub not a persona id": sign(key, claims(sub="admin")),
        "tampered payload": _tamper(sign(key, claims())),
        "garbage": "not-a-token",
        "two segments": "abc.def",
        "four segments": "a.b.c.d",
        "non base64": "!!!.@@@.###",
        "64 KB": "a" * 65536,
        "refresh token": "rt_" + "x" * 43,
    }


def _tamper(token: str) -> str:
    header, _, signature = token.split(".")
    forged = b64(b'{"sub":"00000000-0000-0000-0000-000000000000","roles":["admin"]}')
    return f"{header}.{forged}.{signature}"


async def test_every_hostile_token_is_401(suite, target):
    for name, token in _hostile(suite).items():
        resp = await target({"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, f"{name}: {resp.status_code} {resp.text}"
        _assert_401(resp)


async def test_missing_or_malformed_authorization_header_is_401(suite, target):
    _assert_401(await target({}))
    _assert_401(await target({"Authorization": "Basic YWRhOnB3"}))
    _assert_401(await target({"Authorization": "Bearer "}))
    _assert_401(await target({"Authorization": "Bearer"}))


async def test_two_authorization_headers_are_401(suite):
    token, _ = await person(suite.client, "ada")
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    resp = await suite.client.get("/api/v1/timelines/home", headers=headers)
    _assert_401(resp)


async def test_valid_token_passes_with_any_case_of_bearer(suite, target):
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    for scheme in ("Bearer", "bearer", "BEARER"):
        resp = await target({"Authorization": f"{scheme} {token}"})
        assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("host", ["gateway", "feed", "groups"])
async def test_token_expired_within_leeway_is_accepted(suite, host):
    """(Identity itself also refuses tokens issued before the account's last password change,
    which this hand-made token would be.)"""
    _, persona_id = await person(suite.client, "ada")
    await suite.deliver()
    now = int(time.time())
    nearly_expired = sign(suite.keys.active, claims(persona_id, iat=now - 310, exp=now - 10))
    _, path = PROTECTED[host]
    resp = await suite.client.get(f"http://{host}{path}", headers=auth(nearly_expired))
    assert resp.status_code == 200, resp.text


async def test_refresh_token_is_not_an_access_token(suite):
    email = await register(suite.client, "ada")
    tokens = await login(suite.client, email)
    resp = await suite.client.get("/api/v1/timelines/home", headers=auth(tokens["refresh_token"]))
    _assert_401(resp)
