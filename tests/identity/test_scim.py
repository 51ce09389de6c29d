"""SCIM 2.0 provisioning: HR's users become accounts with a professional persona, and never
touch a personal one."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from services.identity.models import Account
from tests.helpers import PASSWORD, admin, auth, login, with_personal

SCIM = "/scim/v2"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def scim_token(suite, scopes=("scim",)) -> str:
    root, _ = await admin(suite)
    client = (
        await suite.client.post(
            "/api/v1/admin/clients", json={"name": "HR", "scopes": list(scopes)}, headers=auth(root)
        )
    ).json()
    resp = await suite.client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    return resp.json()["access_token"]


def user(user_name: str = "bjensen", **extra) -> dict:
    return {
        "schemas": [CORE, ENTERPRISE],
        "userName": user_name,
        "externalId": f"hr-{user_name}",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Barbara Jensen",
        "title": "Tour Guide",
        "active": True,
        "emails": [{"value": f"{user_name}@agency.example", "primary": True, "type": "work"}],
        ENTERPRISE: {"department": "Tourism", "employeeNumber": "701984"},
        **extra,
    }


async def test_provisioned_user_gets_an_account_and_a_professional_persona(suite):
    token = await scim_token(suite)
    resp = await suite.client.post(f"{SCIM}/Users", json=user(), headers=auth(token))
    assert resp.status_code == 201, resp.text
    assert resp.headers["content-type"].startswith("application/scim+json")
    body = resp.json()
    assert resp.headers["location"].endswith(f"/Users/{body['id']}")
    assert body[ENTERPRISE]["employeeNumber"] == "701984"  # kept as sent
    got = (await suite.client.get(f"{SCIM}/Users/{body['id']}", headers=auth(token))).json()
    assert got["userName"] == "bjensen"
    assert got["title"] == "Tour Guide"
    root, _ = await admin(suite, "root2")
    listed = (
        await suite.client.get("/api/v1/admin/accounts", params={"q": "bjensen"}, headers=auth(root))
    ).json()
    [account] = listed["items"]
    assert account["provisioned"] is True
    assert account["professional"]["display_name"] == "Barbara Jensen"


async def test_provisioned_accounts_have_no_password_that_signs_in(suite):
    token = await scim_token(suite)
    assert (await suite.client.post(f"{SCIM}/Users", json=user(), headers=auth(token))).status_code == 201
    async with suite.identity.state.database.sessionmaker() as session:
        stored = await session.scalar(
            select(Account.password_hash).where(col(Account.email) == "bjensen@agency.example")
        )
    for guess in (stored, stored[1:], "", PASSWORD):
        resp = await suite.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "bjensen@agency.example", "password": guess},
        )
        assert resp.status_code in (400, 401), resp.text
        assert "access_token" not in resp.json()


async def test_hr_owned_fields_are_read_only_for_the_person(suite):
    token = await scim_token(suite)
    assert (await suite.client.post(f"{SCIM}/Users", json=user(), headers=auth(token))).status_code == 201
    # Provisioned people sign in through single sign-on; here a password is set directly.
    hasher = suite.identity.state.passwords
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Account)
            .where(col(Account.email) == "bjensen@agency.example")
            .values(password_hash=await hasher.hash(PASSWORD))
        )
    tokens = await login(suite.client, "bjensen@agency.example")
    persona = f"/api/v1/personas/{tokens['persona_id']}"
    for field in ({"job_title": "Boss"}, {"department": "Elsewhere"}, {"display_name": "B"}):
        assert (
            await suite.client.patch(persona, json=field, headers=auth(tokens["access_token"]))
        ).status_code == 403
    allowed = await suite.client.patch(persona, json={"bio": "Hi"}, headers=auth(tokens["access_token"]))
    assert allowed.status_code == 200


async def test_filters_paging_sorting_and_attribute_selection(suite):
    token = await scim_token(suite)
    for name in ("alice", "bob", "carol", "dave"):
        assert (
            await suite.client.post(f"{SCIM}/Users", json=user(name), headers=auth(token))
        ).status_code == 201

    async def search(**params):
        resp = await suite.client.get(f"{SCIM}/Users", params=params, headers=auth(token))
        assert resp.status_code == 200, resp.text
        return resp.json()

    assert [r["userName"] for r in (await search(filter='userName eq "carol"'))["Resources"]] == ["carol"]
    assert (await search(filter='userName sw "c" or userName sw "d"'))["totalResults"] == 2
    assert (await search(filter='emails co "bob@"'))["totalResults"] == 1
    assert (await search(filter='externalId eq "hr-alice" and active eq true'))["totalResults"] == 1
    # the lookups clients send before each create run in SQL, with SCIM's case rules
    assert [r["userName"] for r in (await search(filter='userName eq "CAROL"'))["Resources"]] == ["carol"]
    assert (await search(filter=f'{CORE}:userName eq "dave"'))["totalResults"] == 1
    assert [r["externalId"] for r in (await search(filter='externalId eq "hr-bob"'))["Resources"]] == [
        "hr-bob"
    ]
    assert (await search(filter='externalId eq "HR-BOB"'))["totalResults"] == 0
    assert (await search(filter='userName eq "nobody"'))["totalResults"] == 0
    assert (await search(filter="title pr"))["totalResults"] == 4
    page = await search(sortBy="userName", sortOrder="descending", startIndex=2, count=2)
    assert [r["userName"] for r in page["Resources"]] == ["carol", "bob"]
    assert page["totalResults"] == 4 and page["startIndex"] == 2
    slim = await search(filter='userName eq "bob"', attributes="userName")
    assert set(slim["Resources"][0]) <= {"id", "userName", "schemas"}
    bad = await suite.client.get(f"{SCIM}/Users", params={"filter": "userName eq"}, headers=auth(token))
    assert bad.status_code == 400
    assert bad.json()["scimType"] == "invalidFilter"


async def test_patch_put_deactivate_and_delete(suite):
    token = await scim_token(suite)
    created = (await suite.client.post(f"{SCIM}/Users", json=user(), headers=auth(token))).json()
    url = f"{SCIM}/Users/{created['id']}"
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "active", "value": False},
            {"op": "replace", "path": "title", "value": "Lead"},
        ],
    }
    patched = await suite.client.patch(url, json=patch, headers=auth(token))
    assert patched.status_code == 200, patched.text
    assert patched.json()["active"] is False and patched.json()["title"] == "Lead"
    root, _ = await admin(suite, "root2")
    account = (await suite.client.get(f"/api/v1/admin/accounts/{created['id']}", headers=auth(root))).json()
    assert account["status"] == "suspended"
    replaced = await suite.client.put(url, json=user(title="Director"), headers=auth(token))
    assert replaced.status_code == 200 and replaced.json()["title"] == "Director"
    assert replaced.json()["active"] is True
    assert (await suite.client.delete(url, headers=auth(token))).status_code == 204
    assert (await suite.client.get(url, headers=auth(token))).status_code == 404
    account = (await suite.client.get(f"/api/v1/admin/accounts/{created['id']}", headers=auth(root))).json()
    assert account["status"] == "deactivated"


async def test_duplicates_and_bad_bodies_are_scim_errors(suite):
    token = await scim_token(suite)
    assert (await suite.client.post(f"{SCIM}/Users", json=user(), headers=auth(token))).status_code == 201
    dup = await suite.client.post(f"{SCIM}/Users", json=user(), headers=auth(token))
    assert dup.status_code == 409 and dup.json()["scimType"] == "uniqueness"
    for body in ({"schemas": ["urn:bad"], "userName": "x"}, [], {"schemas": [CORE]}):
        resp = await suite.client.post(f"{SCIM}/Users", json=body, headers=auth(token))
        assert resp.status_code == 400, body
        assert resp.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    garbage = await suite.client.post(f"{SCIM}/Users", content=b"{nope", headers=auth(token))
    assert garbage.status_code == 400
    assert (await suite.client.get(f"{SCIM}/Users/not-an-id", headers=auth(token))).status_code == 404
    assert (
        (await suite.client.get(f"{SCIM}/Nothing", headers=auth(token)))
        .headers["content-type"]
        .startswith("application/scim+json")
    )


@pytest.mark.parametrize("scopes", [None, ("webhooks",)])
async def test_scim_needs_a_client_token_with_the_scim_scope(suite, scopes):
    if scopes is None:
        resp = await suite.client.get(f"{SCIM}/Users")
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"] == 'Bearer realm="SCIM"'
        return
    token = await scim_token(suite, scopes)
    assert (await suite.client.get(f"{SCIM}/Users", headers=auth(token))).status_code == 403
    person = await with_personal(suite.client, "ada")
    assert (await suite.client.get(f"{SCIM}/Users", headers=auth(person["pro"]))).status_code == 403


async def test_scim_never_sees_personal_personas(suite):
    token = await scim_token(suite)
    ada = await with_personal(suite.client, "ada")
    created = await suite.client.post(
        f"{SCIM}/Users",
        json=user("ada", emails=[{"value": ada["email"], "primary": True}]),
        headers=auth(token),
    )
    assert created.status_code == 201  # adopts the self-registered account
    listing = await suite.client.get(f"{SCIM}/Users", headers=auth(token))
    assert ada["personal_id"] not in listing.text
    assert "ada_home" not in listing.text
    me = (await suite.client.get("/api/v1/me", headers=auth(ada["personal"]))).json()
    assert me["personal"]["display_name"] == "Ada at home"
