"""Registration: configurable, normalised, and silent about who already has an account."""

from __future__ import annotations

import pytest

from tests.helpers import PASSWORD, auth, login, register, verify
from tests.mailbox import logged_mail
from tests.suite import build_suite


def _account(email: str = "ada@agency.example", **fields):
    return {"email": email, "password": PASSWORD, "handle": "ada", "display_name": "Ada", **fields}


async def _confirm(suite, handle: str = "ada") -> None:
    token = logged_mail().take(handle)
    assert token is not None
    await verify(suite.client, token)


async def test_registration_creates_the_professional_persona(suite):
    await register(suite.client, "ada")
    tokens = await login(suite.client, "ada@agency.example")
    me = (await suite.client.get("/api/v1/me", headers=auth(tokens["access_token"]))).json()
    assert me["professional"]["handle"] == "ada"
    assert me["professional"]["id"] == tokens["persona_id"]
    assert me["personal"] is None
    assert me["roles"] == []


async def test_existing_address_gets_the_same_answer_and_stays_unchanged(suite):
    first = await suite.client.post("/api/v1/accounts", json=_account())
    await _confirm(suite)
    again = await suite.client.post(
        "/api/v1/accounts", json=_account(password="another long password", handle="ada_two")
    )
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    await login(suite.client, "ada@agency.example")  # the first password still works
    resp = await suite.client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": "ada@agency.example",
            "password": "another long password",
        },
    )
    assert resp.status_code == 400


async def test_email_is_normalised(suite):
    resp = await suite.client.post("/api/v1/accounts", json=_account(email="Ada.Lovelace@Agency.EXAMPLE"))
    assert resp.status_code == 202
    await _confirm(suite)
    await login(suite.client, "ada.lovelace@agency.example")


@pytest.mark.parametrize(
    ("password", "problem"), [("short", "at least 12"), ("x" * 257, "at most 256"), (" " * 20, "only spaces")]
)
async def test_password_rules_give_a_clear_problem(suite, password, problem):
    resp = await suite.client.post("/api/v1/accounts", json=_account(password=password))
    assert resp.status_code == 422
    body = resp.json()
    assert problem in body["detail"]
    assert body["errors"][0]["location"] == "body.password"
    assert password.strip() not in resp.text or not password.strip()


@pytest.mark.parametrize(
    "extra", [{"role": "admin"}, {"roles": ["admin"]}, {"status": "active"}, {"is_admin": True}, {"id": 1}]
)
async def test_mass_assignment_is_rejected(suite, extra):
    resp = await suite.client.post("/api/v1/accounts", json=_account(**extra))
    assert resp.status_code == 422
    assert (await suite.client.post("/api/v1/accounts", json=_account())).status_code == 202
    await _confirm(suite)
    tokens = await login(suite.client, "ada@agency.example")
    me = (await suite.client.get("/api/v1/me", headers=auth(tokens["access_token"]))).json()
    assert me["roles"] == []


@pytest.mark.parametrize(
    "fields",
    [
        {"display_name": "Ada\u0000"},
        {"display_name": ""},
        {"display_name": "x" * 101},
        {"handle": "a"},
        {"handle": "has space"},
        {"email": "not-an-email"},
    ],
)
async def test_bad_fields_are_422(suite, fields):
    resp = await suite.client.post("/api/v1/accounts", json=_account(**fields))
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"


async def test_taken_handle_is_202_at_registration_and_409_at_confirmation(suite):
    await register(suite.client, "ada")
    resp = await suite.client.post("/api/v1/accounts", json=_account(email="other@agency.example"))
    assert resp.status_code == 202
    token = logged_mail().take("ada")
    confirm = await suite.client.post(
        "/api/v1/accounts/verification", json={"token": token, "password": PASSWORD}
    )
    assert confirm.status_code == 409


async def test_closed_registration_is_403(database_urls):
    async with build_suite(database_urls, identity={"registration": "closed"}) as suite:
        resp = await suite.client.post("/api/v1/accounts", json=_account())
        assert resp.status_code == 403


async def test_domain_allow_list(database_urls):
    overrides = {"registration": "domains", "allowed_email_domains": ["agency.example"]}
    async with build_suite(database_urls, identity=overrides) as suite:
        assert (await suite.client.post("/api/v1/accounts", json=_account())).status_code == 202
        other = _account(email="ada@gmail.example", handle="ada_g")
        assert (await suite.client.post("/api/v1/accounts", json=other)).status_code == 403


@pytest.mark.parametrize("email", ["ada@agency.internal", "bob@intranet", "carol@hr.test"])
async def test_internal_mail_domains_are_accepted(suite, email):
    resp = await suite.client.post("/api/v1/accounts", json=_account(email=email))
    assert resp.status_code == 202, resp.text
    await _confirm(suite)
    await login(suite.client, email)


@pytest.mark.parametrize(
    "email", ["no-at-sign", "a@", "@agency.example", "a b@agency.example", "a@-bad-.example"]
)
async def test_malformed_addresses_are_422(suite, email):
    resp = await suite.client.post("/api/v1/accounts", json=_account(email=email))
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["location"] == "body.email"
