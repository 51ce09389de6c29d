"""One OpenAPI 3.1 document for the whole suite, merged from the services' own documents.

``merge_documents`` is pure and deterministic (the same inputs give the same document, paths and
components sorted), so ``make openapi`` can write it from in-process apps and CI can diff it.
What the merge does to the services' documents:

- keeps only the paths the gateway routes to the service that publishes them (no ``/health``,
  no ``/internal``); anything else is reported in ``MergeReport.unrouted``;
- turns FastAPI's operation ids (``create_post_api_v1_posts_post``) back into the route name
  (``create_post``), prefixed with the service's name where two services use the same one;
- keeps one copy of a component schema the services share and prefixes the service's title to
  each variant of a name whose definitions differ, rewriting the ``$ref``s;
- declares the bearer scheme (OAuth2 authorization code with PKCE, and password) on every
  operation the gateway does not let through without a token, and no token as the other way
  into a media file, which a signed link opens (decision 0036);
- documents the answers the gateway itself gives (413, 429, 502, 503, 504; and 408 to an
  upload that stalls), and gives every error answer that names no body the problem+json
  schema: every error of every process leaves through ``kit.errors``' handlers, and
  ``Problem`` is ``kit.errors.PROBLEM_SCHEMA``, as in the services' documents.
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

from gateway import search
from gateway.routing import GATEWAY, SEARCH, UPLOAD, is_media_file
from kit.errors import PROBLEM_JSON, PROBLEM_SCHEMA

log = logging.getLogger("gateway.openapi")

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TITLE = "govsocial API"
DESCRIPTION = (
    "The intranet social API suite: identity, feed, groups, moderation, records and media "
    "behind one gateway. Apps sign people in with the OAuth2 authorization-code flow and PKCE S256 at "
    "`/oauth/authorize` (the person chooses the persona the app acts as), then exchange the code "
    "at `POST /api/v1/auth/token`; scripts may use the password grant there. Send the access "
    "token as `Authorization: Bearer …`. Errors are RFC 9457 problem+json."
)
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BEARER = "bearer"
APP_SCOPES = {
    "read": "Read what the persona may read.",
    "write": "Act as the persona: post, comment, react, follow, join.",
}
BEARER_SCHEME: dict[str, Any] = {
    "type": "oauth2",
    "description": "A persona-scoped access token from `POST /api/v1/auth/token`: an app's, through "
    "the authorization-code flow with PKCE S256 (docs/sign-in.md), held to the scopes granted; "
    "or a script's, through the password grant, with the persona's whole reach.",
    "flows": {
        "authorizationCode": {
            "authorizationUrl": "/oauth/authorize",
            "tokenUrl": "/api/v1/auth/token",
            "refreshUrl": "/api/v1/auth/token",
            "scopes": APP_SCOPES,
        },
        "password": {"tokenUrl": "/api/v1/auth/token", "refreshUrl": "/api/v1/auth/token", "scopes": {}},
    },
}
_RATE_HEADERS = {
    "RateLimit": {
        "description": "Remaining requests and seconds to the reset, per policy (IETF draft).",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": "The policies that apply: quota and window, per policy (IETF draft).",
        "schema": {"type": "string"},
    },
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
_PROBLEM = {"content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}
GATEWAY_RESPONSES: dict[str, dict[str, Any]] = {
    "413": {"description": "The request body is over the size limit", **_PROBLEM},
    "429": {
        "description": "Rate limit reached; see Retry-After and RateLimit",
        "headers": {**_RETRY_AFTER, **_RATE_HEADERS},
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
    """What the merge could not take as it was: each entry names service, method and path."""

    unrouted: list[str] = field(default_factory=list)
    duplicate_paths: list[str] = field(default_factory=list)
    renamed_schemas: list[str] = field(default_factory=list)
    renamed_operations: list[str] = field(default_factory=list)


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

    # Operation ids: the route name, unless two operations share it.
    operations = sorted(_operations(kept), key=lambda op: (op[0], op[1]))
    wanted: dict[tuple[str, str], str] = {}
    for path, method, operation in operations:
        fallback = method + re.sub(r"\W", "_", path)
        original = str(operation.get("operationId") or fallback)
        wanted[(path, method)] = _route_name(original, path, method) or original
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
        if original and name != _route_name(original, path, method) and name != original:
            report.renamed_operations.append(f"{service} {method.upper()} {path}: {original} -> {name}")
        if original:
            body_renames.setdefault(service, {})[f"Body_{original}"] = f"{_pascal(name)}Body"
        operation["operationId"] = name

    # Component schemas: shared when equal, prefixed per service when they differ. Equal
    # text can still differ in meaning once a schema it refers to is renamed: repeat until
    # no new clash appears.
    renames: dict[str, dict[str, str]] = {}
    variants: dict[str, dict[str, tuple[str, Any]]] = {}
    for service, doc in docs.items():
        schemas = doc.get("components", {}).get("schemas", {})
        renames[service] = {
            old: new
            for old, new in body_renames.get(service, {}).items()
            if old in schemas and new not in schemas
        }
        for schema_name, schema in schemas.items():
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
            target = rename.get(schema_name, schema_name)
            schema = _walk_refs(schema, rename)
            if target != schema_name and schema.get("title") == schema_name:
                schema["title"] = target  # generated clients name their classes after it
            schemas_out[target] = schema
        for path, item in kept.items():
            if path_owner[path] == service:
                kept[path] = _walk_refs(item, rename)
    schemas_out.setdefault("Problem", copy.deepcopy(PROBLEM_SCHEMA))

    # What the gateway adds to every operation.
    tags: dict[str, dict[str, Any]] = {}
    for doc in docs.values():
        for tag in doc.get("tags", []):
            tags.setdefault(tag["name"], tag)
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
        if not is_public(method.upper(), path):
            security = operation.setdefault("security", [{BEARER: []}])
            responses.setdefault("401", dict(UNAUTHORIZED))
            if method == "get" and is_media_file(path) and {} not in security:
                security.append({})  # or a signed link: `expires` and `signature`, no token
        # An error that names no body has the body the operation's other errors have (SCIM's
        # scim+json), or else problem+json, as kit.errors renders every error.
        declared = [r["content"] for s, r in sorted(responses.items()) if _is_error(s) and "content" in r]
        error_content = declared[0] if declared else _problem_content()
        for status, response in responses.items():
            if _is_error(status) and "content" not in response:
                response["content"] = copy.deepcopy(error_content)
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
        "tags": [tags[name] for name in sorted(tags)],
        "paths": {path: {key: kept[path][key] for key in sorted(kept[path])} for path in sorted(kept)},
        "components": {
            "schemas": {name: schemas_out[name] for name in sorted(schemas_out)},
            "securitySchemes": {name: security_schemes[name] for name in sorted(security_schemes)},
        },
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

    async def _fetch(self, name: str) -> dict[str, Any] | None:
        try:
            resp = await self.clients[name].get(self.urls[name] + "/openapi.json", timeout=5)
            resp.raise_for_status()
            document = resp.json()
        except (httpx.HTTPError, ValueError):
            log.warning("could not fetch the OpenAPI document of %s", name)
            return None
        return document if isinstance(document, dict) else None

    async def warm_up(self, delays: Iterable[float] = (2, 10, 30, 60, 120, 300)) -> None:
        """Learns the route templates (for metrics labels) once the services are up: merges
        after each delay until every service has answered."""
        for delay in delays:
            await asyncio.sleep(delay)
            if "x-unavailable-services" not in await self.document():
                return

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
