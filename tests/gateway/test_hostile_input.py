"""Input that would break a database never reaches one: a NUL character or an unpaired surrogate
anywhere in a path, query, form field or JSON string is a 422 problem naming where (a SCIM error
under /scim), an integer past its column's range a 422, and a cursor's keys are checked before
any query. Each was a 500 on PostgreSQL, SQLite or both."""

from __future__ import annotations

import base64
import json

import pytest

from kit.inputs import SERIAL_MAX
from kit.pagination import encode_cursor
from tests.helpers import admin, auth, person
from tests.identity.test_scim import SCIM, scim_token, user

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def refused(resp, location: str) -> None:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert location in [e["location"] for e in resp.json()["errors"]], resp.text


def scim_refused(resp) -> None:
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/scim+json")
    body = resp.json()
    assert body["schemas"] == [SCIM_ERROR] and body["scimType"] == "invalidValue", body


@pytest.mark.parametrize(
    ("form", "location"),
    [
        ({"grant_type": "password", "username": "ada\x00@agency.example", "password": "x"}, "body.username"),
        ({"grant_type": "client_credentials", "client_id": "c\x00", "client_secret": "x"}, "body.client_id"),
        ({"grant_type": "refresh_token", "refresh_token": "\x00" * 8}, "body.refresh_token"),
    ],
)
async def test_nul_in_sign_in_form_fields_is_422(suite, form, location):
    refused(await suite.client.post("/api/v1/auth/token", data=form), location)


async def test_nul_in_basic_client_credentials_is_never_a_500(suite):
    """A header is no field: the database's own refusal is the last stop (400 on PostgreSQL)."""
    basic = base64.b64encode(b"c\x00lient:secret").decode()
    resp = await suite.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert resp.status_code in (400, 401), resp.text
    assert resp.headers["content-type"] == "application/problem+json"


async def test_nul_in_directory_and_admin_searches_is_422(suite):
    root, _ = await admin(suite)
    for path in ("/api/v1/personas", "/api/v1/admin/accounts"):
        refused(await suite.client.get(path, params={"q": "ad\x00a"}, headers=auth(root)), "query.q")
    refused(await suite.client.get("/api/v1/personas?q=ad%00a", headers=auth(root)), "query.q")


async def test_nul_in_a_path_parameter_is_422(suite):
    root, _ = await admin(suite)
    refused(await suite.client.delete("/api/v1/admin/clients/c%00x", headers=auth(root)), "path.client_id")


async def test_nul_and_lone_surrogates_in_json_strings_are_422_wherever_they_are(suite):
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    headers = {**auth(token), "content-type": "application/json"}
    for raw, location in (
        (b'{"body": "a\\u0000b"}', "body.body"),
        (b'{"body": "a\\ud800b"}', "body.body"),
        (b'{"body": "fine", "links": [{"url": "https://e.example/\\udfff"}]}', "body.links.0.url"),
    ):
        refused(await suite.client.post("/api/v1/posts", content=raw, headers=headers), location)
    # an escaped pair is one character, stored and returned as sent
    ok = await suite.client.post("/api/v1/posts", content=b'{"body": "\\ud83d\\ude00"}', headers=headers)
    assert ok.status_code == 201 and ok.json()["body"] == "\U0001f600", ok.text


@pytest.mark.parametrize("field", ["userName", "externalId", "displayName"])
async def test_scim_refuses_nul_in_its_own_error_format(suite, field):
    token = await scim_token(suite)
    scim_refused(
        await suite.client.post(f"{SCIM}/Users", json=user(**{field: "bj\x00ensen"}), headers=auth(token))
    )
    surrogate = json.dumps(user()).replace('"bjensen"', '"bj\\ud800"').encode()
    scim_refused(
        await suite.client.post(
            f"{SCIM}/Users",
            content=surrogate,
            headers={**auth(token), "content-type": "application/scim+json"},
        )
    )


@pytest.mark.parametrize("attribute", ["userName", "externalId"])
async def test_scim_filters_with_nul_are_scim_errors(suite, attribute):
    token = await scim_token(suite)
    query = f'{attribute} eq "bj\x00"'
    scim_refused(await suite.client.get(f"{SCIM}/Users", params={"filter": query}, headers=auth(token)))
    scim_refused(await suite.client.post(f"{SCIM}/.search", json={"filter": query}, headers=auth(token)))


async def _webhook(suite) -> tuple[str, str]:
    root, _ = await admin(suite)
    body = {"url": "https://hooks.example.org/x", "event_types": ["*"]}
    resp = await suite.client.post("/api/v1/webhooks", json=body, headers=auth(root))
    assert resp.status_code == 201, resp.text
    return root, resp.json()["id"]


@pytest.mark.parametrize("delivery_id", [SERIAL_MAX + 1, 2**63, 10**40])
async def test_delivery_id_past_the_column_range_is_422(suite, delivery_id):
    root, hook = await _webhook(suite)
    resp = await suite.client.post(
        f"/api/v1/webhooks/{hook}/deliveries/{delivery_id}/redeliver", headers=auth(root)
    )
    refused(resp, "path.delivery_id")
    last = await suite.client.post(
        f"/api/v1/webhooks/{hook}/deliveries/{SERIAL_MAX}/redeliver", headers=auth(root)
    )
    assert last.status_code == 404, last.text


@pytest.mark.parametrize("key", [10**40, SERIAL_MAX + 1, -1, "12", 1.5, None, True])
async def test_delivery_cursor_keys_are_checked_before_any_query(suite, key):
    root, hook = await _webhook(suite)
    cursor = encode_cursor(f"deliveries:{hook}", [key])
    resp = await suite.client.get(
        f"/api/v1/webhooks/{hook}/deliveries", params={"cursor": cursor}, headers=auth(root)
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["type"].endswith("/bad-cursor")


@pytest.mark.parametrize(
    ("path", "scope", "key"),
    [
        ("/api/v1/personas", "personas", "ad\x00a"),
        ("/api/v1/personas", "personas", "\ud800"),
        ("/api/v1/personas", "personas", 10**40),
        ("/api/v1/admin/clients", "clients", "c\x00"),
        ("/api/v1/admin/accounts", "admin-accounts", 10**40),
        ("/api/v1/groups", "groups", 2**128 - 1),
    ],
)
async def test_cursor_keys_that_no_query_can_take_are_400(suite, path, scope, key):
    root, _ = await admin(suite)
    await suite.deliver()
    cursor = encode_cursor(scope, [key])
    resp = await suite.client.get(path, params={"cursor": cursor}, headers=auth(root))
    assert resp.status_code == 400, resp.text
    assert resp.json()["type"].endswith("/bad-cursor")


# Integer parameters that no column stores, each with its own bound: a download link's expiry,
# Unix seconds, checked against the clock and its signature (records, decision 0033).
NOT_STORED = {"expires"}


async def test_every_integer_parameter_is_bounded_by_its_column(suite):
    """A new integer path or query parameter without a bound would be the next 500."""
    document = (await suite.client.get("/openapi.json")).json()
    unbounded = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                types = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
                if "integer" in types and parameter["name"] not in NOT_STORED:
                    bounds = [schema, *schema.get("anyOf", [])]
                    if not any(b.get("maximum", SERIAL_MAX + 1) <= SERIAL_MAX for b in bounds):
                        unbounded.append(f"{method.upper()} {path} {parameter['name']}")
    assert unbounded == []
