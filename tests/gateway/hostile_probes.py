"""The contract run's hostile inputs, sent to every operation of the live document: a NUL
character and an unpaired surrogate in each path and query parameter and in each string field of
a JSON body, integers past 32 and 64 bits in each integer parameter, and a cursor holding a 10^40
key. Schema-valid data is schemathesis's part; these values are valid by the schema too (it
cannot say "no NUL"), so they are sent here, where the rule is "a 4xx problem, never a 5xx"."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from kit.pagination import encode_cursor

TEXT = ("a\x00b", "a\ud800b")
INTEGERS = (2**31, 2**63, 10**40)
ERROR_TYPES = ("application/problem+json", "application/scim+json")
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _wire(value: object) -> str:
    """``value`` percent-encoded as a client would send it (a lone surrogate as the invalid
    UTF-8 bytes it would be)."""
    return quote(str(value).encode("utf-8", "surrogatepass"), safe="")


def _types(schema: dict[str, Any]) -> set[str]:
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf", []):
        found |= _types(option)
    return found


def _filler(schema: dict[str, Any]) -> str:
    """A harmless value for the parameters not being probed."""
    if "integer" in _types(schema):
        return "1"
    formats = {schema.get("format")} | {o.get("format") for o in schema.get("anyOf", [])}
    return str(uuid.uuid4()) if "uuid" in formats else "x"


def _values(name: str, schema: dict[str, Any]) -> Iterator[str]:
    yield from TEXT
    if "integer" in _types(schema):
        yield from (str(n) for n in INTEGERS)
    if name == "cursor":
        yield encode_cursor("any", [10**40])


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _url(template: str, params: list[dict[str, Any]], base: dict[str, str], values: dict[str, str]) -> str:
    """``template`` with its path parameters filled, and the query parameters that are required
    or probed."""
    path, query = template, []
    for p in params:
        name = p["name"]
        if p["in"] == "path":
            path = path.replace("{" + name + "}", values[name])
        elif p.get("required") or values[name] != base[name]:
            query.append(f"{name}={values[name]}")
    return path + ("?" + "&".join(query) if query else "")


def requests(document: dict[str, Any]) -> Iterator[tuple[str, str, bytes | None]]:
    """(method, URL path and query, JSON body) for every probe of every operation."""
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            params = [p for p in operation.get("parameters", []) if p["in"] in ("path", "query")]
            base = {p["name"]: _filler(p.get("schema", {})) for p in params}
            for p in params:
                for value in _values(p["name"], p.get("schema", {})):
                    target = _url(template, params, base, {**base, p["name"]: _wire(value)})
                    yield method.upper(), target, None
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = _resolve(document, content["application/json"].get("schema", {}))
                for field, field_schema in schema.get("properties", {}).items():
                    if "string" in _types(_resolve(document, field_schema)):
                        for text in TEXT:
                            body = json.dumps({field: text}).encode()  # NUL and surrogates as \u escapes
                            yield method.upper(), _url(template, params, base, base), body


SCIM_PROBES = [
    ("GET", "/scim/v2/Users?filter=" + _wire(f'{attribute} eq "{text}"'), None)
    for attribute in ("userName", "externalId")
    for text in TEXT
] + [
    ("POST", "/scim/v2/Users", json.dumps({"schemas": [SCIM_USER], attribute: text}).encode())
    for attribute in ("userName", "externalId", "displayName")
    for text in TEXT
]


def probe(base_url: str, document: dict[str, Any], token_for: Callable[[str], str]) -> tuple[int, list[str]]:
    """Sends every probe; returns how many were sent and the ones answered with a 5xx or an
    error that is not a problem (or, under /scim, a SCIM error)."""
    failures: list[str] = []
    sent = 0
    with httpx.Client(base_url=base_url, timeout=30) as client:
        scim = SCIM_PROBES if "/scim/v2/Users" in document["paths"] else []
        for method, target, body in [*requests(document), *scim]:
            headers = {"Authorization": f"Bearer {token_for(target)}"}
            if body is not None:
                headers["content-type"] = "application/json"
            resp = client.request(method, target, content=body, headers=headers)
            sent += 1
            kind = resp.headers.get("content-type", "")
            if resp.status_code >= 500 or (resp.status_code >= 400 and not kind.startswith(ERROR_TYPES)):
                failures.append(f"{resp.status_code} {method} {target[:150]} {(body or b'')[:80]!r}")
    return sent, failures
