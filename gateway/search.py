"""``GET /api/v1/search``: one search over several kinds of thing (decision 0034).

Each kind is searched by the service that owns it (``SEARCH_TYPES``: posts and comments by
feed, people by identity, groups by groups) at ``/api/v1/search/{type}``, which clients may
also call directly. This route asks the owners of the types the client named, at once, with
the client's own request (its token, its query, its limit), and puts their pages side by side:
``{"posts": {"items": [...], "next_cursor": ...}, "people": {...}}``. A cursor belongs to one
type's page, so a request with a ``cursor`` names exactly one type.

If any owner refuses the request (a 4xx, such as the 422 of a query that cannot be one) or
fails, that answer is the answer: a partial result would read as "nothing found".
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import Response

from gateway.proxy import Forwarder, UpstreamStream
from gateway.routing import SEARCH, SEARCH_TYPES
from gateway.upstream import Target
from kit.errors import Unprocessable, problem_response

MAX_TYPES = len(SEARCH_TYPES)


def requested_types(request: Request) -> list[str]:
    """The types the client named (``type=posts,people``, or several ``type=``), in the
    order of ``SEARCH_TYPES``; all of them by default."""
    named = [part.strip() for value in request.query_params.getlist("type") for part in value.split(",")]
    named = [name for name in named if name]
    unknown = sorted({name for name in named if name not in SEARCH_TYPES})
    if unknown or len(named) > 4 * MAX_TYPES:
        known = ", ".join(SEARCH_TYPES)
        raise Unprocessable(
            "`type` is one or several of {known}.", params={"known": known}, slug="invalid-search-type"
        )
    types = [name for name in SEARCH_TYPES if name in named] or list(SEARCH_TYPES)
    if "cursor" in request.query_params and len(types) != 1:
        raise Unprocessable(
            "A `cursor` belongs to one type's page: name that one `type`.", slug="cursor-needs-one-type"
        )
    return types


def _subrequest(request: Request, kind: str) -> Request:
    """The client's request, addressed to one type's owner: the same headers and query, less
    ``type``."""
    query = [
        (k, v)
        for k, v in parse_qsl(
            request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )
        if k != "type"
    ]
    scope = dict(request.scope)
    path = f"{SEARCH}/{kind}"
    scope["path"] = path
    scope["raw_path"] = path.encode()
    scope["query_string"] = urlencode(query).encode()
    return Request(scope, request.receive)


async def search(
    request: Request, forwarder: Forwarder, targets: Mapping[str, Target], client_address: str
) -> Response:
    types = requested_types(request)
    answers = await asyncio.gather(
        *(
            forwarder.forward(_subrequest(request, kind), targets[SEARCH_TYPES[kind]], client_address)
            for kind in types
        )
    )
    for answer in answers:
        if answer.status_code != 200:
            return answer
        if isinstance(answer, UpstreamStream):  # a page always comes with its length
            await answer.upstream.aclose()
            detail = "A service sent a search page of no declared length."
            return problem_response(request, 502, "Bad Gateway", detail, slug="upstream-error")
    pages = {kind: json.loads(bytes(answer.body)) for kind, answer in zip(types, answers, strict=True)}
    return Response(json.dumps(pages, separators=(",", ":")), media_type="application/json")


def document(paths: Mapping[str, Any]) -> dict[str, Any] | None:
    """The OpenAPI path item of ``/api/v1/search``, built from the types' own operations (their
    parameters and page schemas), or None when a type's operation is missing."""
    pages: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    for kind in SEARCH_TYPES:
        operation = paths.get(f"{SEARCH}/{kind}", {}).get("get")
        if operation is None:
            return None
        pages[kind] = copy.deepcopy(operation["responses"]["200"]["content"]["application/json"]["schema"])
        for parameter in operation.get("parameters", []):
            parameters.setdefault(parameter.get("name"), copy.deepcopy(parameter))
    types_parameter = {
        "name": "type",
        "in": "query",
        "required": False,
        "description": "The kinds of thing to search, comma separated (default: all); one with a `cursor`.",
        "schema": {"type": "string", "examples": ["posts,people"]},
    }
    return {
        "get": {
            "tags": ["search"],
            "summary": "Search posts, comments, people and groups at once",
            "description": (
                "Each type's page comes from the service that owns it, with the visibility rules "
                "of that type's own search (`/api/v1/search/{type}`); the query syntax, ranking and "
                "highlighting are described in the search guide. A type's `next_cursor` continues "
                "that type alone (`type=<that type>&cursor=...`)."
            ),
            "operationId": "search",
            "parameters": [types_parameter, *parameters.values()],
            "responses": {
                "200": {
                    "description": "One page per type asked for",
                    "content": {
                        "application/json": {
                            "schema": {
                                "title": "SearchResults",
                                "type": "object",
                                "properties": pages,
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                "400": {"description": "A cursor of another search"},
                "422": {"description": "A query, type or parameter that cannot be one"},
            },
        }
    }
