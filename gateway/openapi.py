"""One OpenAPI 3.1 document for the whole suite, merged from the services' own documents.

``merge_documents`` is pure and deterministic (the same inputs give the same document, paths and
components sorted), so ``make openapi`` can write it from in-process apps and CI can diff it.
What the merge does to the services' documents, so that a generated client reads as if written
by hand (decision 0037):

- keeps only the paths the gateway routes to the service that publishes them (no ``/health``,
  no ``/internal``); anything else is reported in ``MergeReport.unrouted``;
- turns FastAPI's operation ids (``create_post_api_v1_posts_post``) back into the route name
  (``create_post``), or the name ``OPERATION_IDS`` gives where two routes share one or a route's
  name is a bare verb; a clash left is reported and still made unique;
- keeps one copy of a component schema the services share and prefixes the service's title to
  each variant of a name whose definitions differ, rewriting the ``$ref``s; then names them for
  people: ``PostPublic`` is ``Post``, ``Page_PostPublic_`` is ``PostPage`` (``SCHEMA_NAMES``
  where the short name is taken), and an answer FastAPI describes inline and titles after its
  route gets a name of its own in the components (``ANSWER_NAMES``); titles follow, since
  generated clients name their classes after them;
- declares the bearer scheme (OAuth2: authorization code with PKCE, password, client
  credentials, each refreshable where it is) on every operation the gateway does not let
  through without a token, and on SCIM's, which identity checks itself (a client's token with
  the ``scim`` scope); no token is the other way into a media file, which a signed link opens
  (decision 0036), and into the event stream, which a ticket opens (decision 0035);
- documents the answers the gateway itself gives (413 to a body too large, 429, 502, 503, 504;
  and 408 to an upload that stalls), and gives every error answer that names no body the
  problem+json schema: every error of every process leaves through ``kit.errors``' handlers,
  and ``Problem`` is ``kit.errors.PROBLEM_SCHEMA``, whatever a service's document says;
- documents the headers a success carries (``RateLimit`` on every one, ``Link`` on a page,
  ``Location`` and ``Idempotent-Replayed`` on a create that takes an ``Idempotency-Key``, and
  what ``SENT_HEADERS`` lists), and the ``links`` from a create to what reads, changes and
  deletes the created thing, which stateful tests follow.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from domain.catalogue import openapi_webhooks
from domain.principal import APP_SCOPES, NOTICES_SCOPE
from gateway import search
from gateway.routing import GATEWAY, SEARCH, STREAM, UPLOAD, is_media_file
from kit.errors import PROBLEM_JSON, PROBLEM_SCHEMA

log = logging.getLogger("gateway.openapi")

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TITLE = "govsocial API"
DESCRIPTION = (
    "The intranet social API suite: identity, feed, groups, moderation, records and media "
    "behind one gateway. Apps sign people in with the OAuth2 authorization-code flow and PKCE S256 at "
    "`/oauth/authorize` (the person chooses the persona the app acts as), then exchange the code "
    "at `POST /api/v1/auth/token`; scripts may use the password grant there, and integrators' "
    "clients the client-credentials grant (SCIM, webhooks). Send the access token as "
    "`Authorization: Bearer …`. Errors are RFC 9457 problem+json."
)
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BEARER = "bearer"
TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - an address, not a secret
APP_SCOPE_TEXT = {
    "read": "Read what the persona may read.",
    "write": "Act as the persona: post, comment, react, follow, join.",
}
CLIENT_SCOPES = {
    "scim": "Provision accounts through SCIM (`/scim/v2/`).",
    "webhooks": "Register and manage the client's own webhooks.",
}
BEARER_SCHEME: dict[str, Any] = {
    "type": "oauth2",
    "description": "An access token from `POST /api/v1/auth/token`, sent as `Authorization: Bearer …`. "
    "A person's token speaks for one of their personas, never for both: an app's, from the "
    "authorization-code flow with PKCE S256 (docs/sign-in.md), for the persona the person chose "
    "at consent, held to the scopes granted, and refreshed for that same persona; a script's, "
    "from the password grant, for the professional persona unless the form says "
    "`persona=personal`, with the persona's whole reach (a suspended persona may ask for the "
    "`notices` scope alone), whose refresh may name the other `persona`. An integrator "
    "client's token, from the client-credentials grant, speaks for the client and no persona, "
    "with the client's scopes: `scim` for SCIM, `webhooks` for its webhooks.",
    "flows": {
        "authorizationCode": {
            "authorizationUrl": "/oauth/authorize",
            "tokenUrl": TOKEN_URL,
            "refreshUrl": TOKEN_URL,
            "scopes": {scope: APP_SCOPE_TEXT[scope] for scope in APP_SCOPES},
        },
        "password": {
            "tokenUrl": TOKEN_URL,
            "refreshUrl": TOKEN_URL,
            "scopes": {NOTICES_SCOPE: "A suspended persona's one way in: read and appeal its notices."},
        },
        "clientCredentials": {"tokenUrl": TOKEN_URL, "scopes": CLIENT_SCOPES},
    },
}
# Paths the gateway lets through without a token because their service checks a client's
# token itself, and the scopes it requires (decision 0037).
CLIENT_TOKEN_PATHS = {"/scim/v2/": ["scim"]}
# Operations that take an integrator client's token with these scopes, or an administrator's.
CLIENT_OR_PERSONA_PATHS = {"/api/v1/webhooks": ["webhooks"]}
SERVERS = [
    {
        "url": "/",
        "description": "The gateway that serves this document: paths are relative to its address "
        "(a deployment's public URL), so the document is the same wherever it is served.",
    }
]

# Headers, declared once (components.headers) and referred to from each answer that sends one.
HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "The version of what the answer shows: `If-None-Match` with it answers 304 "
        "while unchanged, `If-Match` with it refuses a change based on an older version (412).",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true`: the stored answer to an earlier request with the same "
        "`Idempotency-Key`; nothing was created again.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Link": {
        "description": 'The next page, when there is one: `<…?cursor=…&limit=…>; rel="next"` '
        "(RFC 8288), the same cursor as the body's `next_cursor`.",
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The address of what the request created or queued.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "RateLimit": {
        "description": "Remaining requests and seconds to the reset, per policy (IETF draft).",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": "The policies that apply: quota and window, per policy (IETF draft).",
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
}
RATE_HEADERS = ("RateLimit", "RateLimit-Policy")
# Headers some operations send that their documents cannot show the merge: (method, path) ->
# {header: the statuses that carry it}. The rest is derived: RateLimit on every success (the
# gateway's), Link on a page (kit.pagination), Location and Idempotent-Replayed on a create
# with an Idempotency-Key (kit.idempotency).
SENT_HEADERS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("get", "/api/v1/groups/{group_id}"): {"ETag": ("200", "304")},
    ("patch", "/api/v1/groups/{group_id}"): {"ETag": ("200",)},
    ("get", "/api/v1/media/{media_id}/file"): {"ETag": ("200", "206", "304")},
    ("get", "/api/v1/media/{media_id}/preview"): {"ETag": ("200", "206", "304")},
    ("post", "/api/v1/groups/{group_id}/invitations"): {"Location": ("200", "201")},
    ("post", "/api/v1/groups/{group_id}/join-requests"): {"Location": ("200", "201")},
    ("post", "/api/v1/me/export"): {"Location": ("202",)},
    ("post", "/api/v1/me/notices/{notice_id}/appeal"): {"Location": ("201",)},
    ("post", "/api/v1/me/personas"): {"Location": ("201",)},
    ("post", "/api/v1/records/dispositions"): {"Location": ("202",)},
    ("post", "/api/v1/records/matters"): {"Location": ("201",)},
    ("post", "/api/v1/records/matters/{matter_id}/exports"): {"Location": ("202",)},
    ("post", "/api/v1/records/matters/{matter_id}/holds"): {"Location": ("201",)},
    ("post", "/api/v1/reports"): {"Location": ("201",)},
    ("post", "/api/v1/webhooks"): {"Location": ("201",)},
    ("post", "/scim/v2/Users"): {"Location": ("201",)},  # RFC 7644 §3.1: the user's own address
    ("get", "/scim/v2/Users/{user_id}"): {"Location": ("200",)},
    ("put", "/scim/v2/Users/{user_id}"): {"Location": ("200",)},
    ("patch", "/scim/v2/Users/{user_id}"): {"Location": ("200",)},
}
IDEMPOTENCY_KEY = "Idempotency-Key"

# Operation ids the route names cannot give (decision 0037): two routes of one name, and bare
# verbs that name no resource. Every id reads verb first, then its resource.
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("get", "/api/v1/admin/audit"): "list_admin_audit_entries",
    ("get", "/api/v1/posts"): "list_posts",
    ("get", "/api/v1/records/audit"): "list_records_audit_entries",
    ("get", "/api/v1/search/posts"): "search_posts",
    ("post", "/api/v1/me/notices/{notice_id}/appeal"): "appeal_notice",
    ("post", "/api/v1/moderation/reports/{report_id}/assign"): "assign_report",
    ("post", "/api/v1/moderation/reports/{report_id}/reopen"): "reopen_report",
    ("post", "/api/v1/moderation/reports/{report_id}/resolve"): "resolve_report",
    ("post", "/api/v1/moderation/reports/{report_id}/unassign"): "unassign_report",
    ("post", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): "redeliver_delivery",
    ("post", "/scim/v2/.search"): "search_resources",
    ("post", "/scim/v2/Users/.search"): "search_users",
}
# Schema names where ``XPublic`` cannot simply be ``X`` because ``X`` is another schema: the
# answer takes the short name, and the request body is named for what it is.
SCHEMA_NAMES = {
    "Charter": "CharterCreate",
    "CharterPublic": "Charter",
    "Rule": "RuleIn",
    "RulePublic": "Rule",
}
# Answers FastAPI describes inline, titled after the route ("Response Get Jwks  Well Known …"):
# their names in the components, by operation id and status.
ANSWER_NAMES: dict[tuple[str, str], str] = {
    ("stream_events", "200"): "StreamEvent",
}
# The links of a create's answer to the operations on what it created (OpenAPI `links`, which
# stateful tests follow): (method, path) -> (status, {parameter: where its value is}, ids).
LINKS: dict[tuple[str, str], tuple[str, dict[str, str], tuple[str, ...]]] = {
    ("post", "/api/v1/groups"): (
        "201",
        {"group_id": "$response.body#/id"},
        ("get_group", "update_group", "delete_group"),
    ),
    ("post", "/api/v1/posts"): (
        "201",
        {"post_id": "$response.body#/id"},
        ("get_post", "update_post", "delete_post"),
    ),
    ("post", "/api/v1/posts/{post_id}/comments"): (
        "201",
        {"post_id": "$request.path.post_id", "comment_id": "$response.body#/id"},
        ("get_comment", "update_comment", "delete_comment"),
    ),
    ("post", "/api/v1/webhooks"): (
        "201",
        {"webhook_id": "$response.body#/id"},
        ("get_webhook", "update_webhook", "delete_webhook"),
    ),
}

_HEADER_REFS = {name: {"$ref": f"#/components/headers/{name}"} for name in HEADERS}
_RETRY_AFTER = {"Retry-After": _HEADER_REFS["Retry-After"]}
_PROBLEM = {"content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}
GATEWAY_RESPONSES: dict[str, dict[str, Any]] = {
    "413": {"description": "The request body is over the size limit", **_PROBLEM},
    "429": {
        "description": "Rate limit reached; see Retry-After and RateLimit",
        "headers": {**_RETRY_AFTER, **{name: _HEADER_REFS[name] for name in RATE_HEADERS}},
        **_PROBLEM,
    },
    "502": {"description": "The service behind the gateway gave no valid answer", **_PROBLEM},
    "503": {
        "description": "The service behind the gateway is unavailable",
        "headers": _RETRY_AFTER,
        **_PROBLEM,
    },
    "504": {"description": "The service behind the gateway did not answer in time", **_PROBLEM},
}
UPLOAD_STALLED = {"description": "The upload stalled: nothing arrived within the timeout", **_PROBLEM}
UNAUTHORIZED = {"description": "Missing or invalid bearer token"}


@dataclass
class MergeReport:
    """What the merge could not take as it was, each entry naming where: a path it left out, a
    name or id it had to make up, a link or a Problem schema it did not publish."""

    unrouted: list[str] = field(default_factory=list)
    duplicate_paths: list[str] = field(default_factory=list)
    renamed_schemas: list[str] = field(default_factory=list)
    renamed_operations: list[str] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)
    drifted_problems: list[str] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)


def _walk_refs(node: Any, rename: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.removeprefix("#/components/schemas/")
                out[key] = "#/components/schemas/" + rename.get(name, name)
            else:
                out[key] = _walk_refs(value, rename)
        return out
    if isinstance(node, list):
        return [_walk_refs(item, rename) for item in node]
    return node


def _route_name(operation_id: str, path: str, method: str) -> str | None:
    """FastAPI's default id is ``{name}{path with non-word characters as _}_{method}``."""
    suffix = re.sub(r"\W", "_", path) + "_" + method
    if operation_id.endswith(suffix) and len(operation_id) > len(suffix):
        return operation_id[: -len(suffix)]
    return None


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def _operations(paths: Mapping[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in paths.items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": dict(PROBLEM_REF)}}


def _is_error(status: str) -> bool:
    return status[:1] in {"4", "5"}


def merge_documents(
    documents: Mapping[str, Mapping[str, Any]],
    *,
    owner: Callable[[str], str | None],
    is_public: Callable[[str, str], bool],
    title: str = TITLE,
    version: str = "0.1.0",
    description: str = "",
    report: MergeReport | None = None,
) -> dict[str, Any]:
    """Merges ``{service name: its OpenAPI document}``; ``owner(path)`` names the service the
    gateway routes ``path`` to, ``is_public(method, path)`` says whether it needs no token."""
    report = report if report is not None else MergeReport()
    docs = {name: copy.deepcopy(dict(doc)) for name, doc in documents.items()}

    # Paths first: only what the gateway routes to the service that publishes it.
    kept: dict[str, dict[str, Any]] = {}
    path_owner: dict[str, str] = {}
    for service, doc in docs.items():
        for path, item in doc.get("paths", {}).items():
            if owner(path) != service:
                if not path.startswith(("/health/", "/internal/")):
                    report.unrouted.append(f"{service} {path}")
                continue
            if path in kept:
                report.duplicate_paths.append(f"{service} {path} (also {path_owner[path]})")
                continue
            kept[path] = item
            path_owner[path] = service

    # The gateway's own search over several types, from the types' operations.
    if (item := search.document(kept)) is not None:
        kept[SEARCH] = item
        path_owner[SEARCH] = GATEWAY

    # Operation ids: the route name or OPERATION_IDS', unless two operations still share one.
    operations = sorted(_operations(kept), key=lambda op: (op[0], op[1]))
    wanted: dict[tuple[str, str], str] = {}
    for path, method, operation in operations:
        fallback = method + re.sub(r"\W", "_", path)
        original = str(operation.get("operationId") or fallback)
        named = OPERATION_IDS.get((method, path))
        wanted[(path, method)] = named or _route_name(original, path, method) or original
    counts: dict[str, int] = {}
    for name in wanted.values():
        counts[name] = counts.get(name, 0) + 1
    used: set[str] = set()
    body_renames: dict[str, dict[str, str]] = {}
    for path, method, operation in operations:
        service = path_owner[path]
        name = wanted[(path, method)]
        if counts[name] > 1:
            name = f"{service}_{name}"
        base, n = name, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        original = str(operation.get("operationId") or "")
        if name != wanted[(path, method)]:
            report.renamed_operations.append(f"{service} {method.upper()} {path}: {original} -> {name}")
        if original:
            body_renames.setdefault(service, {})[f"Body_{original}"] = f"{_pascal(name)}Body"
        operation["operationId"] = name

    # Component schemas: shared when equal, prefixed per service when they differ. Equal
    # text can still differ in meaning once a schema it refers to is renamed: repeat until
    # no new clash appears. Problem is kit's, whatever a service's copy says.
    renames: dict[str, dict[str, str]] = {}
    variants: dict[str, dict[str, tuple[str, Any]]] = {}
    for service, doc in docs.items():
        schemas = doc.get("components", {}).get("schemas", {})
        if schemas.get("Problem", PROBLEM_SCHEMA) != PROBLEM_SCHEMA:
            report.drifted_problems.append(service)
        renames[service] = {
            old: new
            for old, new in body_renames.get(service, {}).items()
            if old in schemas and new not in schemas
        }
        for schema_name, schema in schemas.items():
            if schema_name != "Problem":
                final = renames[service].get(schema_name, schema_name)
                variants.setdefault(final, {})[service] = (schema_name, schema)
    clashing: set[str] = set()
    changed = True
    while changed:
        changed = False
        for final, by_service in variants.items():
            if final in clashing or len(by_service) < 2:
                continue
            bodies = [_walk_refs(schema, renames[s]) for s, (_, schema) in by_service.items()]
            if any(body != bodies[0] for body in bodies[1:]):
                clashing.add(final)
                changed = True
                for service, (schema_name, _) in by_service.items():
                    prefix = _pascal(str(docs[service].get("info", {}).get("title", service)))
                    renames[service][schema_name] = prefix + final
                    report.renamed_schemas.append(f"{service} {schema_name} -> {prefix + final}")
    schemas_out: dict[str, Any] = {}
    for service, doc in docs.items():
        rename = renames[service]
        for schema_name, schema in doc.get("components", {}).get("schemas", {}).items():
            if schema_name == "Problem":
                continue
            target = rename.get(schema_name, schema_name)
            schema = _walk_refs(schema, rename)
            if target != schema_name and schema.get("title") == schema_name:
                schema["title"] = target  # generated clients name their classes after it
            schemas_out[target] = schema
        for path, item in kept.items():
            if path_owner[path] == service:
                kept[path] = _walk_refs(item, rename)
    schemas_out["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
    # What identity's webhooks deliver (domain.catalogue, docs/events.md): its own components.
    webhooks, event_schemas = openapi_webhooks()
    for name, schema in event_schemas.items():
        if schemas_out.setdefault(name, schema) != schema:
            report.unnamed.append(f"event schema {name}: a service's schema has this name")
    _name_for_people(schemas_out, kept, report)
    _name_inline_answers(schemas_out, kept, report)

    # What the gateway adds to every operation.
    tags: dict[str, dict[str, Any]] = {}
    for doc in docs.values():
        for tag in doc.get("tags", []):
            tags.setdefault(tag["name"], tag)
    ids = {operation["operationId"]: (path, method) for path, method, operation in _operations(kept)}
    for path, method, operation in _operations(kept):
        for tag in operation.get("tags", []):
            tags.setdefault(tag, {"name": tag})
        responses = operation.setdefault("responses", {})
        for status, response in GATEWAY_RESPONSES.items():
            if status == "413" and "requestBody" not in operation:
                continue
            existing = responses.setdefault(status, copy.deepcopy(response))
            for name, header in response.get("headers", {}).items():
                existing.setdefault("headers", {}).setdefault(name, copy.deepcopy(header))
        if method == "post" and path == UPLOAD:
            responses.setdefault("408", copy.deepcopy(UPLOAD_STALLED))
        _declare_security(operation, method, path, is_public(method.upper(), path))
        # An error that names no body has the body the operation's other errors have (SCIM's
        # scim+json), or else problem+json, as kit.errors renders every error.
        declared = [r["content"] for s, r in sorted(responses.items()) if _is_error(s) and "content" in r]
        error_content = declared[0] if declared else _problem_content()
        for status, response in responses.items():
            if _is_error(status) and "content" not in response:
                response["content"] = copy.deepcopy(error_content)
        _document_headers(operation, method, path, schemas_out)
        _link(operation, method, path, ids, report)
        operation["responses"] = dict(sorted(responses.items()))

    security_schemes: dict[str, Any] = {}
    for doc in docs.values():
        for name, scheme in doc.get("components", {}).get("securitySchemes", {}).items():
            security_schemes.setdefault(name, scheme)
    security_schemes[BEARER] = BEARER_SCHEME

    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": "3.1.0",
        "info": info,
        "servers": copy.deepcopy(SERVERS),
        "tags": [tags[name] for name in sorted(tags)],
        "paths": {path: {key: kept[path][key] for key in sorted(kept[path])} for path in sorted(kept)},
        "webhooks": webhooks,
        "components": {
            "schemas": {name: schemas_out[name] for name in sorted(schemas_out)},
            "headers": copy.deepcopy(HEADERS),
            "securitySchemes": {name: security_schemes[name] for name in sorted(security_schemes)},
        },
    }


def _person_name(name: str) -> str:
    """``PostPublic`` -> ``Post``, ``Page_PostPublic_`` -> ``PostPage`` (with a service's
    prefix, ``FeedPage_PostPublic_`` -> ``FeedPostPage``), as ``SCHEMA_NAMES`` says first."""
    if name in SCHEMA_NAMES:
        return SCHEMA_NAMES[name]
    if page := re.fullmatch(r"([A-Za-z0-9]*)Page_([A-Za-z0-9]+)_", name):
        return page[1] + _person_name(page[2]) + "Page"
    if name.endswith("Public") and len(name) > len("Public"):
        return name.removesuffix("Public")
    return name


def _name_for_people(schemas: dict[str, Any], paths: dict[str, Any], report: MergeReport) -> None:
    """Renames the component schemas in place (``_person_name``), their titles and every
    ``$ref`` with them; a short name another schema keeps is not taken (reported)."""
    wanted = {old: new for old in schemas if (new := _person_name(old)) != old}
    staying = set(schemas) - set(wanted)
    rename: dict[str, str] = {}
    for old, new in sorted(wanted.items()):
        if new in staying or new in rename.values():
            report.unnamed.append(f"schema {old}: {new} is another schema's name")
        else:
            rename[old] = new
    renamed = {}
    for name, schema in schemas.items():
        schema = _walk_refs(schema, rename)
        if name in rename:
            schema["title"] = rename[name]  # generated clients name their classes after it
        renamed[rename.get(name, name)] = schema
    schemas.clear()
    schemas.update(renamed)
    for path, item in paths.items():
        paths[path] = _walk_refs(item, rename)


def _name_inline_answers(schemas: dict[str, Any], paths: dict[str, Any], report: MergeReport) -> None:
    """Moves each answer's titled inline schema into the components, under its
    ``ANSWER_NAMES`` name, or its title when that is a name already (``SearchResults``)."""
    for path, method, operation in _operations(paths):
        for status, response in operation.get("responses", {}).items():
            for media in response.get("content", {}).values():
                schema = media.get("schema")
                if not isinstance(schema, dict) or "$ref" in schema or "title" not in schema:
                    continue
                title = str(schema["title"])
                name = ANSWER_NAMES.get((operation["operationId"], status))
                if name is None and re.fullmatch(r"[A-Z][A-Za-z0-9]*", title):
                    name = title
                named = {**schema, "title": name}
                if name is None or schemas.setdefault(name, named) != named:  # none, or taken
                    report.unnamed.append(f"answer {status} of {method.upper()} {path}: {title}")
                    continue
                media["schema"] = {"$ref": f"#/components/schemas/{name}"}


def _declare_security(operation: dict[str, Any], method: str, path: str, public: bool) -> None:
    """The bearer scheme where a token is needed: by the gateway, or by a service that checks
    a client's token itself (with the scopes it needs); 401 wherever one is."""
    client_scopes = next((s for p, s in CLIENT_TOKEN_PATHS.items() if path.startswith(p)), None)
    if public and client_scopes is None:
        return
    if client_scopes is not None:
        security = operation.setdefault("security", [{BEARER: list(client_scopes)}])
    else:
        security = operation.setdefault("security", [{BEARER: []}])
        for prefix, scopes in CLIENT_OR_PERSONA_PATHS.items():
            if (path == prefix or path.startswith(prefix + "/")) and {BEARER: scopes} not in security:
                security.insert(0, {BEARER: list(scopes)})
        if method == "get" and (is_media_file(path) or path == STREAM) and {} not in security:
            security.append({})  # or a signed link (`expires`, `signature`), or a stream ticket
    operation["responses"].setdefault("401", dict(UNAUTHORIZED))


def _is_page(schema: Any, schemas: Mapping[str, Any]) -> bool:
    """A page of kit.pagination: ``items`` and ``next_cursor``, which kit also sends as Link."""
    if isinstance(schema, dict) and "$ref" in schema:
        schema = schemas.get(str(schema["$ref"]).removeprefix("#/components/schemas/"), {})
    return isinstance(schema, dict) and set(schema.get("properties", {})) == {"items", "next_cursor"}


def _document_headers(operation: dict[str, Any], method: str, path: str, schemas: Mapping[str, Any]) -> None:
    """The headers each success carries, as far as the merge knows them (``SENT_HEADERS``)."""
    takes_key = any(
        p.get("in") == "header" and p.get("name") == IDEMPOTENCY_KEY for p in operation.get("parameters", [])
    )
    listed = SENT_HEADERS.get((method, path), {})
    for status, response in operation["responses"].items():
        if status[:1] not in {"2", "3"}:
            continue
        names = [*RATE_HEADERS, *(name for name, statuses in listed.items() if status in statuses)]
        if takes_key and status[:1] == "2":
            names += ["Location", "Idempotent-Replayed"]
        if any(_is_page(media.get("schema"), schemas) for media in response.get("content", {}).values()):
            names.append("Link")
        headers = response.setdefault("headers", {})
        for name in names:
            headers.setdefault(name, dict(_HEADER_REFS[name]))
        response["headers"] = dict(sorted(headers.items()))


def _link(
    operation: dict[str, Any],
    method: str,
    path: str,
    ids: Mapping[str, tuple[str, str]],
    report: MergeReport,
) -> None:
    """A create's ``links`` to the operations on what it created (``LINKS``)."""
    if (method, path) not in LINKS:
        return
    status, parameters, targets = LINKS[(method, path)]
    response = operation["responses"].get(status)
    if response is None or any(target not in ids for target in targets):
        report.broken_links.append(f"{method.upper()} {path} {status}: {', '.join(targets)}")
        return
    response["links"] = {
        _pascal(target): {"operationId": target, "parameters": dict(parameters)} for target in targets
    }


class RouteTemplates:
    """Maps a concrete path to the document's path template (for metrics labels) and names
    the methods documented for it."""

    def __init__(self, paths: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        compiled = []
        self._methods: dict[str, list[str]] = {}
        for template, item in (paths or {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            compiled.append((template.count("{"), -len(template), re.compile(f"^{pattern}$"), template))
            self._methods[template] = [m.upper() for m in METHODS if m in item]
        self._templates = sorted(compiled, key=lambda t: (t[0], t[1]))

    def methods(self, template: str) -> list[str]:
        return self._methods.get(template, [])

    def match(self, path: str) -> str | None:
        for _, _, pattern, template in self._templates:
            if pattern.match(path):
                return template
        return None


class OpenAPISource:
    """Fetches the services' documents and merges them, cached for ``cache_seconds``. A service
    that does not answer keeps its last good document; one never seen is named in the
    document's ``x-unavailable-services`` and the merge is retried on the next request."""

    def __init__(
        self,
        clients: Mapping[str, httpx.AsyncClient],
        urls: Mapping[str, str],
        *,
        owner: Callable[[str], str | None],
        is_public: Callable[[str, str], bool],
        cache_seconds: float,
        description: str = "",
    ) -> None:
        self.clients = clients
        self.urls = urls
        self.owner = owner
        self.is_public = is_public
        self.cache_seconds = cache_seconds
        self.description = description
        self.templates = RouteTemplates()
        self._documents: dict[str, dict[str, Any]] = {}
        self._merged: dict[str, Any] | None = None
        self._merged_at = -1e9
        self._lock = asyncio.Lock()
        self._starting = False  # while warm_up waits for services that have not answered yet

    async def _fetch(self, name: str) -> dict[str, Any] | None:
        try:
            resp = await self.clients[name].get(self.urls[name] + "/openapi.json", timeout=5)
            resp.raise_for_status()
            document = resp.json()
        except (httpx.HTTPError, ValueError):
            # A service the gateway starts with may come up after it: until it has answered
            # once, and while the warm-up still waits for it, its absence is no news.
            level = logging.DEBUG if self._starting and name not in self._documents else logging.WARNING
            log.log(level, "could not fetch the OpenAPI document of %s", name)
            return None
        return document if isinstance(document, dict) else None

    async def warm_up(self, delays: Iterable[float] = (2, 10, 30, 60, 120, 300)) -> None:
        """Learns the route templates (for metrics labels) once the services are up: merges
        after each delay until every service has answered. A service that has never answered
        is logged at debug level until the last try, and warned about only if it is still away
        then."""
        waits = list(delays)
        self._starting = True
        try:
            for n, delay in enumerate(waits, start=1):
                await asyncio.sleep(delay)
                self._starting = n < len(waits)
                if "x-unavailable-services" not in await self.document():
                    return
        finally:
            self._starting = False

    async def document(self) -> dict[str, Any]:
        async with self._lock:
            fresh = time.monotonic() - self._merged_at < self.cache_seconds
            if self._merged is not None and fresh:
                return self._merged
            names = list(self.urls)
            fetched = await asyncio.gather(*(self._fetch(name) for name in names))
            for name, document in zip(names, fetched, strict=True):
                if document is not None:
                    self._documents[name] = document
            available = {name: self._documents[name] for name in names if name in self._documents}
            merged = merge_documents(
                available, owner=self.owner, is_public=self.is_public, description=self.description
            )
            missing = [name for name in names if name not in available]
            if missing:
                merged["x-unavailable-services"] = missing
            else:
                self._merged_at = time.monotonic()
            self._merged = merged
            self.templates = RouteTemplates(merged["paths"])
            return merged
