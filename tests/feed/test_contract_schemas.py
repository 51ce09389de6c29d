"""Feed's OpenAPI document says what the server sends and takes: the body of every success,
a request body clients can type, and no server default a generated client must send."""

from __future__ import annotations

from typing import Any

from tests.feed.support import people
from tests.helpers import auth


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def _success_schema(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    answer = document["paths"][path][method]["responses"][status]
    assert "content" in answer, f"{method.upper()} {path} documents {status} without a body"
    schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
    return schema


def _request_components(document: dict[str, Any]) -> set[str]:
    """Every component a request body uses, directly or through another component."""
    schemas = document["components"]["schemas"]
    seen: set[str] = set()
    pending: list[Any] = [
        op["requestBody"] for ops in document["paths"].values() for op in ops.values() if "requestBody" in op
    ]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/") and ref.split("/")[-1] not in seen:
                seen.add(ref.split("/")[-1])
                pending.append(schemas[ref.split("/")[-1]])
            pending.extend(node.values())
    return seen


async def test_follow_and_reaction_document_the_body_of_their_201(suite):
    document = suite.feed.openapi()
    follow = _success_schema(document, "/api/v1/following/{persona_id}", "put", "201")
    react = _success_schema(document, "/api/v1/posts/{post_id}/reactions/{kind}", "put", "201")
    assert follow == {"$ref": "#/components/schemas/FollowPublic"}
    assert react == {"$ref": "#/components/schemas/PostPublic"}

    (ada, _), (_, bob_id) = await people(suite, "ada", "bob")
    followed = await suite.client.put(f"/api/v1/following/{bob_id}", headers=auth(ada))
    assert followed.status_code == 201, followed.text
    assert followed.json().keys() == _schema(document, "FollowPublic")["properties"].keys()
    post = await suite.client.post(
        "/api/v1/posts", json={"body": "Reactions have bodies."}, headers=auth(ada)
    )
    reacted = await suite.client.put(f"/api/v1/posts/{post.json()['id']}/reactions/like", headers=auth(ada))
    assert reacted.status_code == 201, reacted.text
    assert reacted.json()["id"] == post.json()["id"]


async def test_notifications_read_is_a_plain_object_and_the_one_of_rule_holds(suite):
    schema = _schema(suite.feed.openapi(), "NotificationsRead")
    assert "oneOf" not in schema and "anyOf" not in schema
    assert schema["type"] == "object" and not schema.get("required")
    assert set(schema["properties"]) == {"ids", "all"}
    assert "exactly one" in schema["description"]

    ((ada, _),) = await people(suite, "ada")
    read = "/api/v1/notifications/read"
    for body in ({}, {"ids": [], "all": True}):
        refused = await suite.client.post(read, json=body, headers=auth(ada))
        assert refused.status_code == 422, (body, refused.text)
    assert (await suite.client.post(read, json={"all": True}, headers=auth(ada))).status_code == 200


async def test_no_request_body_schema_publishes_a_default(suite):
    """openapi-typescript 7 makes a property with a ``default`` required: every default of a
    request body is said in its description instead, and the field is not required."""
    for app in (suite.feed, suite.groups, suite.identity):
        document = app.openapi()
        schemas = document["components"]["schemas"]
        for name in _request_components(document):
            for field, schema in schemas[name].get("properties", {}).items():
                assert "default" not in schema, (name, field)
    post_create = _schema(suite.feed.openapi(), "PostCreate")
    assert "audience" not in post_create.get("required", [])
    assert 'Default: `"organisation"`' in post_create["properties"]["audience"]["description"]

    ((ada, _),) = await people(suite, "ada")
    post = await suite.client.post("/api/v1/posts", json={"body": "No audience sent."}, headers=auth(ada))
    assert post.status_code == 201 and post.json()["audience"] == "organisation", post.text
