"""One API, one contract: the gateway's merged OpenAPI document. The checks walk whatever the
services publish, and name every operation that breaks a rule."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from gateway.export import merged_document, render
from gateway.openapi import METHODS, MergeReport, OpenAPISource, RouteTemplates, merge_documents
from gateway.routing import is_public, resolve
from kit.errors import PROBLEM_SCHEMA
from tests.helpers import auth, person
from tests.processes import free_ports
from tests.suite import build_suite


async def _document(suite) -> dict[str, Any]:
    resp = await suite.client.get("/openapi.json")
    assert resp.status_code == 200, resp.text
    document: dict[str, Any] = resp.json()
    return document


def _operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


async def test_the_gateway_serves_one_valid_openapi_3_1_document_of_every_service(suite):
    document = await _document(suite)
    validate(document)
    assert document["openapi"].startswith("3.1")
    owners = {resolve(path) for path in document["paths"]}
    assert (
        owners
        == {*suite.services, "gateway"}
        == {"identity", "feed", "groups", "moderation", "records", "media", "gateway"}
    )
    # the gateway's own: one search over the types their owners publish (decision 0034)
    assert [path for path in document["paths"] if resolve(path) == "gateway"] == ["/api/v1/search"]
    assert "x-unavailable-services" not in document


async def test_every_published_path_is_routed_to_its_service_and_published_once(suite):
    report = MergeReport()
    document = merged_document(suite.services, report)
    assert report.unrouted == [], "published by a service but not routed by the gateway"
    assert report.duplicate_paths == []
    assert not [p for p in document["paths"] if p.startswith(("/health/", "/internal/"))]
    for service, app in suite.services.items():
        published = {p for p in app.openapi()["paths"] if not p.startswith(("/health/", "/internal/"))}
        assert published <= set(document["paths"]), service


async def test_the_live_document_is_the_one_make_openapi_writes(suite):
    live = await _document(suite)
    assert live == merged_document(suite.services)
    assert render(live) == render(merged_document(suite.services))
    assert list(live["paths"]) == sorted(live["paths"])
    assert list(live["components"]["schemas"]) == sorted(live["components"]["schemas"])


async def test_operation_ids_are_unique_and_every_operation_has_a_summary(suite):
    document = await _document(suite)
    ids: dict[str, list[str]] = {}
    no_summary = []
    for path, method, operation in _operations(document):
        ids.setdefault(operation.get("operationId", ""), []).append(f"{method.upper()} {path}")
        if not str(operation.get("summary", "")).strip():
            no_summary.append(f"{method.upper()} {path}")
    assert {k: v for k, v in ids.items() if len(v) > 1 or not k} == {}
    assert not no_summary, "operations without a summary:\n" + "\n".join(no_summary)


GATEWAY_STATUSES = {"413", "429", "502", "503", "504"}


async def test_every_error_answer_is_problem_json_except_scims_own(suite):
    """SCIM (RFC 7644 §3.12) answers its errors as application/scim+json; what the gateway
    itself answers on those paths is still problem+json."""
    document = await _document(suite)
    offenders = []
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                media = sorted(response.get("content", {}))
                allowed = [["application/problem+json"]]
                if path.startswith("/scim/v2/") and status not in GATEWAY_STATUSES:
                    allowed.append(["application/scim+json"])
                if media not in allowed:
                    offenders.append(f"{method.upper()} {path} {status}: {media}")
    assert not offenders, "error bodies that are not problem+json:\n" + "\n".join(offenders)


async def test_gateway_answers_are_documented_on_every_operation(suite):
    document = await _document(suite)
    missing = []
    for path, method, operation in _operations(document):
        wanted = {"429", "502", "503", "504"} | ({"413"} if "requestBody" in operation else set())
        absent = wanted - set(operation["responses"])
        if absent:
            missing.append(f"{method.upper()} {path}: {sorted(absent)}")
    assert not missing, "gateway answers not documented:\n" + "\n".join(missing)
    headers = document["paths"]["/api/v1/auth/token"]["post"]["responses"]["429"]["headers"]
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(headers)


async def test_protected_operations_declare_the_bearer_scheme_and_public_ones_do_not(suite):
    document = await _document(suite)
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "oauth2"
    flows = scheme["flows"]
    assert flows["password"]["tokenUrl"] == flows["password"]["refreshUrl"] == "/api/v1/auth/token"
    # what generated clients need for the code flow (decision 0035): the endpoints and the scopes
    code = flows["authorizationCode"]
    assert code["authorizationUrl"] == "/oauth/authorize"
    assert code["tokenUrl"] == code["refreshUrl"] == "/api/v1/auth/token"
    assert set(code["scopes"]) == {"read", "write"}
    # an integrator client's grant, with every scope a client may be given but the apps' own
    clients = document["components"]["schemas"]["ClientCreate"]["properties"]["scopes"]["items"]["enum"]
    assert flows["clientCredentials"]["tokenUrl"] == "/api/v1/auth/token"
    assert (
        set(flows["clientCredentials"]["scopes"]) == set(clients) - {"read", "write"} == {"scim", "webhooks"}
    )
    # how a persona is chosen: the token is persona-scoped
    assert "persona=personal" in scheme["description"] and "consent" in scheme["description"]
    defined = {scope for flow in flows.values() for scope in flow["scopes"]}
    wrong = []
    for path, method, operation in _operations(document):
        declared = {name for requirement in operation.get("security", []) for name in requirement}
        scopes = {
            scope for requirement in operation.get("security", []) for scope in requirement.get("bearer", [])
        }
        needs_token = not is_public(method.upper(), path) or path.startswith("/scim/v2/")
        if needs_token != ("bearer" in declared) or (needs_token and "401" not in operation["responses"]):
            wrong.append(f"{method.upper()} {path} (public: {not needs_token}, security: {sorted(declared)})")
        if not scopes <= defined or (
            path.startswith("/scim/v2/") and operation["security"] != [{"bearer": ["scim"]}]
        ):
            wrong.append(f"{method.upper()} {path}: scopes {sorted(scopes)}")
    assert not wrong, "security declared wrongly:\n" + "\n".join(wrong)
    assert document["paths"]["/api/v1/webhooks"]["post"]["security"] == [
        {"bearer": ["webhooks"]},
        {"bearer": []},
    ]
    # a signed link opens a media file, a one-time ticket the event stream: no token either
    assert {} in document["paths"]["/api/v1/media/{media_id}/file"]["get"]["security"]
    assert {} in document["paths"]["/api/v1/stream"]["get"]["security"]


def test_the_gateways_additions_are_documented_only_where_they_can_happen():
    """413 only with a body to refuse, 401 for a missing token only where the gateway needs one."""
    body = {"content": {"application/json": {"schema": {"type": "object", "title": "In"}}}}
    paths = {
        "/a/open": {"get": _get("open", "S"), "post": {**_get("send", "S")["get"], "requestBody": body}},
        "/a/closed": {"get": _get("closed", "S")},
    }
    merged = merge_documents(
        {"alpha": _doc("Alpha", paths, {"S": {}})},
        owner=lambda p: "alpha",
        is_public=lambda m, p: p == "/a/open",
    )
    statuses = {
        (method, path): set(operation["responses"])
        for path, item in merged["paths"].items()
        for method, operation in item.items()
    }
    assert "413" in statuses[("post", "/a/open")] and "413" not in statuses[("get", "/a/open")]
    assert "401" not in statuses[("get", "/a/open")] | statuses[("post", "/a/open")]
    assert "401" in statuses[("get", "/a/closed")]
    assert "security" not in merged["paths"]["/a/open"]["get"]


async def test_one_server_the_address_the_document_is_served_from(suite):
    document = await _document(suite)
    assert [server["url"] for server in document["servers"]] == ["/"]


def _untyped(schema: Any) -> bool:
    return not isinstance(schema, dict) or schema in ({}, {"type": "object"})


async def test_request_and_response_bodies_are_typed(suite):
    document = await _document(suite)
    untyped = []
    for path, method, operation in _operations(document):
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            if _untyped(content.get("schema")):
                untyped.append(f"{method.upper()} {path} request {media}")
        for status, response in operation["responses"].items():
            for media, content in response.get("content", {}).items():
                if media != "text/event-stream" and _untyped(content.get("schema")):
                    untyped.append(f"{method.upper()} {path} {status} {media}")
    assert not untyped, "untyped bodies:\n" + "\n".join(untyped)


async def test_a_service_that_is_down_is_named_and_the_others_are_still_documented(suite):
    suite.router.down.add("groups")
    document = await _document(suite)
    assert document["x-unavailable-services"] == ["groups"]
    assert "/api/v1/posts" in document["paths"]
    assert not [p for p in document["paths"] if resolve(p) == "groups"]
    # moderation's group queue sits under groups' prefix, and is still documented
    assert "/api/v1/groups/{group_id}/reports" in document["paths"]


async def test_the_problem_schema_is_kits_in_every_document(suite):
    """One Problem: each service's document and the gateway's merge publish
    kit.errors.PROBLEM_SCHEMA, and so does a merge no service gave one to."""
    for service, app in suite.services.items():
        assert app.openapi()["components"]["schemas"]["Problem"] == PROBLEM_SCHEMA, service
    assert (await _document(suite))["components"]["schemas"]["Problem"] == PROBLEM_SCHEMA
    alone = merge_documents({"alpha": _doc("Alpha", {}, {})}, owner=lambda path: None, is_public=is_public)
    assert alone["components"]["schemas"]["Problem"] == PROBLEM_SCHEMA
    # a service whose copy drifted (an older kit in a process not yet upgraded) changes nothing
    drifted = {**PROBLEM_SCHEMA, "required": ["title"]}
    report = MergeReport()
    merged = merge_documents(
        {
            "alpha": _doc("Alpha", {}, {"Problem": drifted}),
            "beta": _doc("Beta", {}, {"Problem": PROBLEM_SCHEMA}),
        },
        owner=lambda path: None,
        is_public=is_public,
        report=report,
    )
    assert merged["components"]["schemas"]["Problem"] == PROBLEM_SCHEMA
    assert "AlphaProblem" not in merged["components"]["schemas"]
    assert report.drifted_problems == ["alpha"]


def _doc(title: str, paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": title}, "paths": paths, "components": {"schemas": schemas}}


def _get(operation_id: str, ref: str) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}
    return {"get": {"operationId": operation_id, "summary": "s", "responses": {"200": {"content": content}}}}


def test_merge_prefixes_differing_schemas_and_clashing_operation_ids_per_service():
    item = {"type": "object", "properties": {"id": {"type": "string"}}}
    documents = {
        "alpha": _doc(
            "Alpha",
            {"/a/items": _get("list_items_a_items_get", "Page_Item_")},
            {"Item": item, "Page_Item_": {"items": {"$ref": "#/components/schemas/Item"}}, "Same": {}},
        ),
        "beta": _doc(
            "Beta",
            {"/b/items": _get("list_items_b_items_get", "Page_Item_")},
            {
                "Item": {**item, "required": ["id"]},
                "Page_Item_": {"items": {"$ref": "#/components/schemas/Item"}},
                "Same": {},
            },
        ),
    }
    report = MergeReport()
    merged = merge_documents(
        documents,
        owner=lambda p: {"a": "alpha", "b": "beta"}[p.split("/")[1]],
        is_public=lambda m, p: True,
        report=report,
    )
    schemas = merged["components"]["schemas"]
    # Item differs, so does the page that refers to it, although its own text is the same
    assert {"AlphaItem", "BetaItem", "AlphaItemPage", "BetaItemPage", "Same"} <= set(schemas)
    assert "Item" not in schemas and "Page_Item_" not in schemas
    assert schemas["BetaItemPage"]["items"] == {"$ref": "#/components/schemas/BetaItem"}
    beta = merged["paths"]["/b/items"]["get"]
    assert beta["operationId"] == "beta_list_items"
    assert merged["paths"]["/a/items"]["get"]["operationId"] == "alpha_list_items"
    assert beta["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("BetaItemPage")
    assert len(report.renamed_schemas) == 4


def test_merge_leaves_out_and_reports_paths_the_gateway_does_not_route():
    documents = {"alpha": _doc("Alpha", {"/a/x": _get("x", "S"), "/elsewhere": _get("y", "S")}, {"S": {}})}
    report = MergeReport()
    merged = merge_documents(
        documents,
        owner=lambda p: "alpha" if p.startswith("/a/") else None,
        is_public=lambda m, p: False,
        report=report,
    )
    assert list(merged["paths"]) == ["/a/x"]
    assert report.unrouted == ["alpha /elsewhere"]
    assert merged["paths"]["/a/x"]["get"]["security"] == [{"bearer": []}]


def test_the_document_renders_the_same_every_time():
    documents = {"alpha": _doc("Alpha", {"/a/y": _get("y", "S"), "/a/x": _get("x", "S")}, {"T": {}, "S": {}})}
    runs = [
        render(merge_documents(documents, owner=lambda p: "alpha", is_public=lambda m, p: False))
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert list(json.loads(runs[0])["paths"]) == ["/a/x", "/a/y"]


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/groups/memberships", "/api/v1/groups/memberships"),
        ("/api/v1/groups/3f2a", "/api/v1/groups/{group_id}"),
        ("/api/v1/groups/3f2a/members/9", "/api/v1/groups/{group_id}/members/{persona_id}"),
        ("/api/v1/nothing", None),
    ],
)
def test_route_templates_prefer_literal_segments(path, template):
    templates = RouteTemplates(
        {
            "/api/v1/groups/{group_id}": {"get": {}, "patch": {}},
            "/api/v1/groups/memberships": {"get": {}},
            "/api/v1/groups/{group_id}/members/{persona_id}": {"put": {}, "delete": {}},
        }
    )
    assert templates.match(path) == template
    if template == "/api/v1/groups/{group_id}":
        assert templates.methods(template) == ["GET", "PATCH"]


# The headers a client reads (decision 0037); the others (Date, Content-Type, X-Request-ID…)
# are on every answer and say nothing about the operation.
WATCHED = ("ETag", "Idempotent-Replayed", "Link", "Location", "RateLimit", "RateLimit-Policy", "Retry-After")


def _documented_headers(document: dict[str, Any], method: str, path: str, status: int) -> set[str]:
    template = RouteTemplates(document["paths"]).match(path)
    assert template is not None, path
    response = document["paths"][template][method]["responses"].get(str(status))
    assert response is not None, f"{method.upper()} {template} {status} is not documented"
    return set(response.get("headers", {}))


async def test_each_header_an_answer_carries_is_documented_for_its_operation_and_status(suite):
    """Over the live suite, a sample that between them send every header a client reads: each
    one an answer carries is documented for its operation and status, and the Location and ETag
    documented are sent."""
    document = await _document(suite)
    token, _ = await person(suite.client, "hedda")
    await suite.deliver()
    key = {"Idempotency-Key": "first-post", **auth(token)}
    answers = [
        ("post", await suite.client.post("/api/v1/posts", json={"body": "One"}, headers=key)),
        ("post", await suite.client.post("/api/v1/posts", json={"body": "One"}, headers=key)),  # replayed
        ("post", await suite.client.post("/api/v1/posts", json={"body": "Two"}, headers=auth(token))),
    ]
    post_id = answers[0][1].json()["id"]
    group_key = {"Idempotency-Key": "first-group", **auth(token)}
    charter = {"objective": "Say what is sent.", "audience": "Client authors.", "review_at": "2030-01-01"}
    group = {"name": "Headers", "handle": "headers", "purpose": "Document the headers.", "charter": charter}
    answers += [
        ("get", await suite.client.get("/api/v1/timelines/home?limit=1", headers=auth(token))),
        ("get", await suite.client.get(f"/api/v1/posts/{post_id}", headers=auth(token))),
        ("post", await suite.client.post("/api/v1/groups", json=group, headers=group_key)),
    ]
    group_id = answers[-1][1].json()["id"]
    await suite.deliver()
    answers.append(("get", await suite.client.get(f"/api/v1/groups/{group_id}", headers=auth(token))))
    etag = {"If-None-Match": answers[-1][1].headers["ETag"], **auth(token)}
    answers.append(("get", await suite.client.get(f"/api/v1/groups/{group_id}", headers=etag)))
    seen: set[str] = set()
    wrong = []
    for method, answer in answers:
        assert answer.status_code < 400, answer.text
        where = f"{method.upper()} {answer.request.url.path} {answer.status_code}"
        documented = _documented_headers(document, method, answer.request.url.path, answer.status_code)
        sent = {name for name in WATCHED if name in answer.headers}
        seen |= sent
        if sent - documented:
            wrong.append(f"{where}: sends {sorted(sent - documented)} undocumented")
        if {"Location", "ETag"} & documented - sent:
            wrong.append(f"{where}: documents {sorted({'Location', 'ETag'} & documented - sent)}, never sent")
    assert not wrong, "\n".join(wrong)
    assert seen == set(WATCHED) - {"Retry-After"}  # the sample reached every header it checks
    assert [answer.status_code for _, answer in answers] == [201, 201, 201, 200, 200, 201, 200, 304]


async def test_links_lead_from_a_create_to_operations_on_what_it_created(suite):
    document = await _document(suite)
    operations = {op["operationId"]: (path, op) for path, _, op in _operations(document)}
    found = 0
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                found += 1
                target_path, target = operations[link["operationId"]]
                wanted = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                assert set(link["parameters"]) == wanted, (method, path, status, name)
                assert status.startswith("2") and target_path.startswith(path.split("{")[0].rstrip("/"))
    assert found == 12  # posts, comments, groups and webhooks: read, change, delete


async def test_the_warm_up_waits_quietly_for_a_service_and_warns_if_it_stays_away(caplog):
    """A service that has never answered is no news while the warm-up still waits for it (the
    gateway often starts first); after the last try it is, and so is one that answered and went."""
    port, away = free_ports(2)
    document = json.dumps({"openapi": "3.1.0", "info": {"title": "Feed"}, "paths": {}}).encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(document)}\r\n"
        writer.write(head.encode() + b"connection: close\r\n\r\n" + document)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    caplog.set_level(logging.DEBUG, logger="gateway.openapi")
    try:
        async with httpx.AsyncClient() as client:
            source = OpenAPISource(
                {"feed": client, "groups": client},
                {"feed": f"http://127.0.0.1:{port}", "groups": f"http://127.0.0.1:{away}"},
                owner=resolve,
                is_public=is_public,
                cache_seconds=60,
            )
            await source.warm_up(delays=(0, 0, 0))
            logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "gateway.openapi"]
            message = "could not fetch the OpenAPI document of"
            assert logged == [
                (logging.DEBUG, f"{message} groups"),
                (logging.DEBUG, f"{message} groups"),
                (logging.WARNING, f"{message} groups"),
            ]
            caplog.clear()
            server.close()
            await server.wait_closed()
            assert (await source.document())["x-unavailable-services"] == ["groups"]
            logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "gateway.openapi"]
            assert sorted(logged) == [
                (logging.WARNING, f"{message} feed"),
                (logging.WARNING, f"{message} groups"),
            ]
    finally:
        server.close()


@pytest.mark.parametrize("warm_up", [True, False])
async def test_the_warm_up_runs_from_startup_only_when_asked(database_urls, warm_up):
    """On by default (the gateway learns its route templates by itself); the in-process suite
    turns it off, and the first request for the document merges instead."""

    def warming() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "gateway-openapi-warm-up"]

    async with build_suite(database_urls, gateway={"openapi_warm_up": warm_up}) as suite:
        assert len(warming()) == warm_up
        assert "x-unavailable-services" not in await _document(suite)
    assert warming() == []
