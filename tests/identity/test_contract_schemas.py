"""Identity's OpenAPI document says what the server sends and takes: statuses that can happen
only, SCIM's messages under their names, the token form one shape per grant, enums where the
values are fixed, and one body for a persona's edit."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.helpers import auth, person, with_personal
from tests.identity.test_scim import SCIM, scim_token, user
from tests.suite import build_suite

SCIM_BODIES = {
    ("post", "/scim/v2/Users"): "ScimUser",
    ("put", "/scim/v2/Users/{user_id}"): "ScimUser",
    ("patch", "/scim/v2/Users/{user_id}"): "ScimPatchOp",
    ("post", "/scim/v2/Users/.search"): "ScimSearchRequest",
    ("post", "/scim/v2/.search"): "ScimSearchRequest",
}
SCIM_ANSWERS = {
    ("get", "/scim/v2/ServiceProviderConfig"): ("200", "ServiceProviderConfig"),
    ("get", "/scim/v2/ResourceTypes/{name}"): ("200", "ResourceType"),
    ("get", "/scim/v2/Schemas/{schema_id}"): ("200", "Schema"),
    ("get", "/scim/v2/Users"): ("200", "ScimListResponse"),
    ("post", "/scim/v2/Users"): ("201", "ScimUser"),
    ("get", "/scim/v2/Users/{user_id}"): ("200", "ScimUser"),
    ("post", "/scim/v2/.search"): ("200", "ScimListResponse"),
}
GRANTS = {
    "password": "PasswordGrant",
    "authorization_code": "AuthorizationCodeGrant",
    "refresh_token": "RefreshTokenGrant",
    "client_credentials": "ClientCredentialsGrant",
    "urn:ietf:params:oauth:grant-type:token-exchange": "TokenExchangeGrant",
}


def _conforms(document: dict[str, Any], body: Any, name: str) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


@pytest.mark.parametrize(
    ("method", "path", "unsent"),
    [
        ("post", "/api/v1/accounts", {"401", "404"}),
        ("post", "/api/v1/accounts/verification", {"401", "404"}),
        ("post", "/api/v1/auth/token", {"404"}),
        ("post", "/api/v1/auth/revoke", {"401", "404"}),
        ("get", "/api/v1/me/sessions", {"404"}),
        ("get", "/.well-known/jwks.json", {"401", "404"}),
    ],
)
async def test_statuses_that_are_never_sent_are_not_documented(suite, method, path, unsent):
    responses = suite.identity.openapi()["paths"][path][method]["responses"]
    assert not unsent & responses.keys(), sorted(responses)


async def test_the_statuses_that_are_sent_stay_documented(suite):
    paths = suite.identity.openapi()["paths"]
    assert "401" in paths["/api/v1/auth/token"]["post"]["responses"]  # invalid_client
    assert {"401", "404"} <= paths["/api/v1/me/sessions/{session_id}"]["delete"]["responses"].keys()
    assert "404" in paths["/api/v1/me/personas/personal"]["delete"]["responses"]


async def test_scim_operations_name_their_bodies_and_answers(suite):
    document = suite.identity.openapi()
    for (method, path), name in SCIM_BODIES.items():
        content = document["paths"][path][method]["requestBody"]["content"]
        # SCIM's own type only: two types of one schema break openapi-python-client's body
        assert set(content) == {"application/scim+json"}, (method, path)
        assert {c["schema"]["$ref"] for c in content.values()} == {f"#/components/schemas/{name}"}
    for (method, path), (status, name) in SCIM_ANSWERS.items():
        answer = document["paths"][path][method]["responses"][status]
        assert answer["content"]["application/scim+json"]["schema"] == {
            "$ref": f"#/components/schemas/{name}"
        }
    for path, operations in document["paths"].items():
        if path.startswith("/scim/"):
            for method, operation in operations.items():
                errors = {s: a for s, a in operation["responses"].items() if s.startswith("4")}
                assert "422" not in errors, (method, path)  # SCIM answers 400 invalidValue instead
                for answer in errors.values():
                    assert answer["content"] == {
                        "application/scim+json": {"schema": {"$ref": "#/components/schemas/ScimError"}}
                    }


async def test_scim_answers_match_their_schemas_and_send_no_etag_while_etag_is_unsupported(suite):
    document = suite.identity.openapi()
    token = await scim_token(suite)
    config = await suite.client.get(f"{SCIM}/ServiceProviderConfig", headers=auth(token))
    _conforms(document, config.json(), "ServiceProviderConfig")
    assert config.json()["etag"] == {"supported": False}
    created = await suite.client.post(f"{SCIM}/Users", json=user(), headers=auth(token))
    assert created.status_code == 201, created.text
    _conforms(document, created.json(), "ScimUser")
    user_path = f"{SCIM}/Users/{created.json()['id']}"
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Head Guide"}],
    }
    _conforms(document, patch, "ScimPatchOp")
    for answer in (
        created,
        await suite.client.get(user_path, headers=auth(token)),
        await suite.client.put(user_path, json=user(), headers=auth(token)),
        await suite.client.patch(user_path, json=patch, headers=auth(token)),
    ):
        assert answer.status_code in (200, 201), answer.text
        assert "etag" not in answer.headers
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName eq "bjensen"',
    }
    _conforms(document, search, "ScimSearchRequest")
    found = await suite.client.post(f"{SCIM}/.search", json=search, headers=auth(token))
    _conforms(document, found.json(), "ScimListResponse")
    missing = await suite.client.get(f"{SCIM}/Users/{'0' * 32}", headers=auth(token))
    assert missing.status_code == 404
    _conforms(document, missing.json(), "ScimError")


async def test_scim_without_a_public_url_names_resources_by_relative_references(suite):
    token = await scim_token(suite)
    created = await suite.client.post(f"{SCIM}/Users", json=user(), headers=auth(token))
    assert created.headers["location"] == f"/scim/v2/Users/{created.json()['id']}"
    assert created.json()["meta"]["location"] == created.headers["location"]


async def test_scim_names_resources_under_the_public_url_never_identitys_own(database_urls):
    public = "https://social.agency.example"
    async with build_suite(database_urls, identity={"public_url": public}) as other:
        token = await scim_token(other)
        created = await other.client.post(f"{SCIM}/Users", json=user("ljensen"), headers=auth(token))
        where = f"{public}/scim/v2/Users/{created.json()['id']}"
        assert created.headers["location"] == created.json()["meta"]["location"] == where
        listed = await other.client.get(f"{SCIM}/Users", headers=auth(token))
        assert [r["meta"]["location"] for r in listed.json()["Resources"]] == [where]
        config = (await other.client.get(f"{SCIM}/ServiceProviderConfig", headers=auth(token))).json()
        assert config["meta"]["location"] == f"{public}/scim/v2/ServiceProviderConfig"
        for body in (created.text, listed.text):
            assert "http://identity" not in body


async def test_the_token_form_is_one_shape_per_grant(suite):
    document = suite.identity.openapi()
    body = document["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert body == {
        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}
    }
    schemas = document["components"]["schemas"]
    request = schemas["TokenRequest"]
    assert request["discriminator"]["propertyName"] == "grant_type"
    assert request["discriminator"]["mapping"] == {g: f"#/components/schemas/{n}" for g, n in GRANTS.items()}
    assert [r["$ref"].split("/")[-1] for r in request["oneOf"]] == [
        "PasswordGrant",
        "AuthorizationCodeGrant",
        "RefreshTokenGrant",
        "ClientCredentialsGrant",
        "TokenExchangeGrant",
    ]
    for grant, name in GRANTS.items():
        assert schemas[name]["properties"]["grant_type"]["const"] == grant
        assert "grant_type" in schemas[name]["required"]
    assert {"username", "password"} <= set(schemas["PasswordGrant"]["required"])
    assert not [n for n in schemas if n.startswith("Body_create_token")]
    response = document["paths"]["/api/v1/auth/token"]["post"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TokenResponse"}


async def test_me_publishes_status_and_roles_as_enums(suite):
    document = suite.identity.openapi()
    me = document["components"]["schemas"]["MePublic"]["properties"]
    status = next(s for s in me["status"]["anyOf"] if s.get("type") == "string")
    roles = next(s for s in me["roles"]["anyOf"] if s.get("type") == "array")
    assert status["enum"] == ["active", "suspended", "deactivated"]
    assert roles["items"]["enum"] == ["admin", "moderator", "communications", "records"]
    token, _ = await person(suite.client, "ada")
    got = await suite.client.get("/api/v1/me", headers=auth(token))
    _conforms(document, got.json(), "MePublic")


async def test_a_persona_edit_is_one_schema_and_a_foreign_field_still_conflicts(suite):
    document = suite.identity.openapi()
    content = document["paths"]["/api/v1/personas/{persona_id}"]["patch"]["requestBody"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/PersonaUpdate"}
    fields = document["components"]["schemas"]["PersonaUpdate"]["properties"]
    assert {"job_title", "skills", "pronouns", "interests", "discoverable", "bio"} <= fields.keys()
    assert "professional persona's only" in fields["job_title"]["description"]
    assert "personal persona's only" in fields["interests"]["description"]

    ada = await with_personal(suite.client, "ada")
    pro = f"/api/v1/personas/{ada['pro_id']}"
    personal = f"/api/v1/personas/{ada['personal_id']}"
    edits = [
        (pro, ada["pro"], {"job_title": "Analyst", "bio": "Hello"}, 200),
        (personal, ada["personal"], {"interests": ["chess"]}, 200),
        (pro, ada["pro"], {"interests": ["chess"]}, 409),
        (personal, ada["personal"], {"job_title": "Analyst"}, 409),
        (pro, ada["pro"], {"job_title": "Analyst", "interests": ["chess"]}, 422),
        (pro, ada["pro"], {"skills": None}, 422),
    ]
    for path, token, body, status in edits:
        resp = await suite.client.patch(path, json=body, headers=auth(token))
        assert resp.status_code == status, (body, resp.text)
    got = await suite.client.get(pro, headers=auth(ada["pro"]))
    assert got.json()["job_title"] == "Analyst" and got.json()["bio"] == "Hello"
