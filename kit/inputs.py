"""What a request may carry before any route reads it: text both databases can store, and
integers within the columns they are compared with.

A NUL character or an unpaired surrogate in a path, a query, a form field or a JSON string would
pass FastAPI and then fail in the database driver as a 500 (PostgreSQL refuses NUL in text, and
no driver encodes a lone surrogate). ``refuse_unstorable_input`` runs before every route's own
parameters and answers 422, the same problem as for any other invalid field, naming where."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.exceptions import RequestValidationError

from kit.text import storable

SERIAL_MAX = 2**31 - 1
"""The largest value of an ``INTEGER`` column, what a serial id is on PostgreSQL."""

SerialId = Annotated[int, Path(ge=1, le=SERIAL_MAX)]
"""A path parameter naming a row by its serial id: past the column's range it is a 422, not a
query that the driver cannot send."""

UNSTORABLE_MESSAGE = "must not contain a NUL character or an unpaired surrogate"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _unstorable_in(value: Any, location: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    """Where in a parsed JSON document a string (key or value) cannot be stored."""
    stack = [(location, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                yield where
        elif isinstance(item, dict):
            for key, child in item.items():
                if not storable(key):
                    yield where
                else:
                    stack.append(((*where, key), child))
        elif isinstance(item, list):
            stack.extend(((*where, i), child) for i, child in enumerate(item))


def _named(part: str, name: str) -> tuple[str, ...]:
    return (part, name) if storable(name) else (part,)


async def _body_problems(request: Request) -> list[tuple[str | int, ...]]:
    if request.headers.get("content-type", "").lower().startswith(_FORM_TYPES):
        form = await request.form()
        return [
            _named("body", key)
            for key, value in form.multi_items()
            if not storable(key) or (isinstance(value, str) and not storable(value))
        ]
    body = await request.body()
    # JSON text can only carry NUL or a lone surrogate as a \u escape (raw, both are invalid
    # JSON, which the route's own parsing refuses), so most bodies are never parsed twice.
    if b"\\u" not in body:
        return []
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return []  # not JSON: the route refuses it in its own way
    return list(_unstorable_in(document, ("body",)))


async def refuse_unstorable_input(request: Request) -> None:
    """Installed on every service app (``kit.service``)."""
    problems: list[tuple[str | int, ...]] = [
        ("path", name)
        for name, value in request.path_params.items()
        if isinstance(value, str) and not storable(value)
    ]
    problems += [
        _named("query", key)
        for key, value in request.query_params.multi_items()
        if not storable(key) or not storable(value)
    ]
    problems += await _body_problems(request)
    if problems:
        raise RequestValidationError(
            [
                {"type": "string_unstorable", "loc": loc, "msg": UNSTORABLE_MESSAGE, "input": None}
                for loc in problems
            ]
        )
