"""Names made for people (decision 0037): generated clients name their classes after the
document's schema names and titles and their functions after its operation ids, so neither may
read as a framework made it (``Page_PostPublic_``, ``Body_create_token_api_v1_auth_token_post``,
``feed_search_posts_2``)."""

from __future__ import annotations

import re
from typing import Any

from gateway.export import merged_document
from gateway.openapi import (
    ANSWER_NAMES,
    LINKS,
    OPERATION_IDS,
    SCHEMA_NAMES,
    SENT_HEADERS,
    MergeReport,
    merge_documents,
)
from tests.gateway.test_openapi import _document, _operations

# What frameworks make of names: a generic's brackets turned to underscores, a form body or an
# answer titled after the route and its path, and the suffix of the server-side class.
GENERATED = re.compile(r"_|^Body|^Response|Api ?V1|Public$")
VERBS = {
    "accept", "add", "appeal", "approve", "assign", "cancel", "close", "create", "decline",
    "delete", "download", "end", "file", "follow", "get", "list", "mark", "pin", "place", "put",
    "patch", "redeliver", "register", "reject", "release", "remove", "reopen", "replace", "resolve",
    "restore", "revoke", "run", "search", "set", "stream", "test", "unassign", "unfollow",
    "unpin", "update", "upload", "verify",
}  # fmt: skip


def _titles(node: Any, where: str = "") -> list[tuple[str, str]]:
    """(where, title) of every schema title in ``node``, inline ones included."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("title"), str) and ("type" in node or "properties" in node or "oneOf" in node):
            found.append((where, node["title"]))
        for key, value in node.items():
            if key != "properties":
                found += _titles(value, f"{where}/{key}")
            else:  # property names are not titles; their schemas may hold some
                for name, prop in value.items():
                    found += _titles(prop, f"{where}/properties/{name}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _titles(value, f"{where}/{i}")
    return found


async def test_schema_names_and_titles_read_as_written_by_hand(suite):
    document = await _document(suite)
    schemas = document["components"]["schemas"]
    generated = sorted(name for name in schemas if GENERATED.search(name))
    assert not generated, f"component names a framework made: {generated}"
    mistitled = sorted(f"{name}: {s['title']}" for name, s in schemas.items() if s.get("title", name) != name)
    assert not mistitled, f"titles that are not the component's name: {mistitled}"
    inline = [
        f"{where}: {title}"
        for where, title in _titles(document["paths"])
        if title.startswith(("Response", "Body_"))
    ]
    assert not inline, "answers and bodies titled after their route:\n" + "\n".join(inline)
    # the names people read, in place of what the services' frameworks call them
    assert {"Post", "PostPage", "Group", "GroupPage", "Charter", "CharterCreate", "JsonWebKeySet"} <= set(
        schemas
    )
    assert {"SearchResults", "StreamEvent", "Problem"} <= set(schemas)


async def test_operation_ids_are_unique_snake_case_and_read_verb_then_resource(suite):
    document = await _document(suite)
    seen: dict[str, str] = {}
    wrong = []
    for path, method, operation in _operations(document):
        name = operation["operationId"]
        where = f"{method.upper()} {path}"
        if name in seen:
            wrong.append(f"{name}: {where} and {seen[name]}")
        seen[name] = where
        words = name.split("_")
        if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name) or words[-1].isdigit():
            wrong.append(f"{name} ({where}): not snake_case, or a numbered duplicate")
        if words[0] not in VERBS:
            wrong.append(f"{name} ({where}): does not start with a verb (a service's name?)")
    assert not wrong, "\n".join(wrong)
    assert seen["list_posts"] == "GET /api/v1/posts"
    assert seen["search_posts"] == "GET /api/v1/search/posts"
    assert seen["search_users"] == "POST /scim/v2/Users/.search"
    assert seen["list_admin_audit_entries"] == "GET /api/v1/admin/audit"
    assert seen["list_records_audit_entries"] == "GET /api/v1/records/audit"
    assert seen["create_post"] == "POST /api/v1/posts"  # the published ids stay as they are


async def test_every_entry_of_the_merges_tables_names_what_the_services_publish(suite):
    """A table entry whose operation or schema is gone would rename nothing; and the merge left
    nothing unnamed, no clash, no link to a missing operation and no Problem of its own."""
    report = MergeReport()
    document = merged_document(suite.services, report)
    assert (report.unnamed, report.renamed_operations, report.broken_links, report.drifted_problems) == (
        [],
        [],
        [],
        [],
    )
    operations = {(method, path): op["operationId"] for path, method, op in _operations(document)}
    assert set(OPERATION_IDS) <= set(operations)
    assert {operations[key] for key in OPERATION_IDS} == set(OPERATION_IDS.values())
    assert set(SENT_HEADERS) | set(LINKS) <= set(operations)
    published = {name for app in suite.services.values() for name in app.openapi()["components"]["schemas"]}
    assert set(SCHEMA_NAMES) <= published
    assert set(SCHEMA_NAMES.values()) | set(ANSWER_NAMES.values()) <= set(document["components"]["schemas"])
    assert {operation for operation, _ in ANSWER_NAMES} <= set(operations.values())


def _doc(title: str, paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": title}, "paths": paths, "components": {"schemas": schemas}}


def _answer(operation_id: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    content = {"application/json": {"schema": schema}}
    return {"operationId": operation_id, "summary": "s", "responses": {status: {"content": content}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def test_the_merge_names_pages_public_shapes_and_inline_answers_for_people():
    thing = {"title": "ThingPublic", "type": "object", "properties": {"id": {"type": "string"}}}
    schemas = {
        "ThingPublic": thing,
        "Page_ThingPublic_": {
            "title": "Page[ThingPublic]",
            "properties": {"items": {"items": _ref("ThingPublic")}},
        },
        "Charter": {"title": "Charter", "type": "object"},
        "CharterPublic": {"title": "CharterPublic", "type": "object"},
        "Other": {"title": "Other", "type": "object"},
        "OtherPublic": {"title": "OtherPublic", "type": "object"},  # no table entry: it stays
    }
    inline = {"title": "Response Ping A Ping Get", "type": "object", "additionalProperties": True}
    paths = {
        "/a/things": {"get": _answer("list_things_a_things_get", _ref("Page_ThingPublic_"))},
        "/a/charter": {"get": _answer("get_charter_a_charter_get", _ref("CharterPublic"))},
        "/a/ping": {"get": _answer("stream_events_a_ping_get", inline)},
        "/a/pong": {"get": _answer("pong_a_pong_get", {**inline, "title": "Response Pong A Pong Get"})},
    }
    report = MergeReport()
    merged = merge_documents(
        {"alpha": _doc("Alpha", paths, schemas)},
        owner=lambda p: "alpha",
        is_public=lambda m, p: True,
        report=report,
    )
    out = merged["components"]["schemas"]
    assert {"Thing", "ThingPage", "Charter", "CharterCreate", "Other", "OtherPublic", "StreamEvent"} <= set(
        out
    )
    assert out["ThingPage"]["title"] == "ThingPage"
    assert out["ThingPage"]["properties"]["items"]["items"] == _ref("Thing")
    assert out["Charter"]["title"] == "Charter"  # CharterPublic's, under the short name
    assert out["CharterCreate"]["title"] == "CharterCreate"
    answers = {
        path: item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        for path, item in merged["paths"].items()
    }
    assert answers["/a/things"] == _ref("ThingPage")
    assert answers["/a/charter"] == _ref("Charter")
    assert answers["/a/ping"] == _ref("StreamEvent")
    assert out["StreamEvent"] == {**inline, "title": "StreamEvent"}
    # what the tables do not cover is left as it was, and said
    assert answers["/a/pong"]["title"] == "Response Pong A Pong Get"
    assert report.unnamed == [
        "schema OtherPublic: Other is another schema's name",
        "answer 200 of GET /a/pong: Response Pong A Pong Get",
    ]


def test_the_merge_takes_operation_ids_from_its_table_and_reports_a_clash_left():
    item = _answer("list_items_a_items_get", {"type": "object", "title": "Items"})
    documents = {
        "alpha": _doc(
            "Alpha",
            {
                "/a/items": {"get": item},
                "/api/v1/posts": {"get": _answer("search_posts_api_v1_posts_get", _ref("S"))},
            },
            {"S": {}},
        ),
        "beta": _doc(
            "Beta", {"/b/items": {"get": {**item, "operationId": "list_items_b_items_get"}}}, {"S": {}}
        ),
    }
    report = MergeReport()
    merged = merge_documents(
        documents,
        owner=lambda p: "beta" if p.startswith("/b/") else "alpha",
        is_public=lambda m, p: True,
        report=report,
    )
    assert merged["paths"]["/api/v1/posts"]["get"]["operationId"] == "list_posts"
    # a clash no table settles still gives unique ids, and is reported for the table
    assert {merged["paths"][p]["get"]["operationId"] for p in ("/a/items", "/b/items")} == {
        "alpha_list_items",
        "beta_list_items",
    }
    assert len(report.renamed_operations) == 2
