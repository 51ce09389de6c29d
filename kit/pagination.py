"""Opaque keyset cursors: ``?limit=&cursor=``, a body of ``items`` and ``next_cursor``, and a
``Link: <…>; rel="next"`` header.

A cursor encodes the sort key of the last item shown (two keys where the first is not unique,
such as a timestamp and an id) plus the name of the list it belongs to, so a cursor from another
list is refused with 400 instead of being misread. Every key is checked before a query sees it:
text the databases can store, integers within 64 bits (within ``INTEGER`` for serial ids), ids
that are UUIDs.
"""

from __future__ import annotations

import base64
import binascii
import json
import string
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import quote, urlencode

from fastapi import Query, Request, Response
from pydantic import BaseModel

from kit.errors import BadRequest
from kit.inputs import SERIAL_MAX
from kit.text import storable

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR = 512
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# What a cursor is written in (URL-safe base64 without padding: ``encode_cursor``).
CURSOR_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1 to 100).")]
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR, description="Opaque cursor from a previous page's `next_cursor`."),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(scope: str, key: Sequence[Any]) -> str:
    raw = json.dumps({"s": scope, "k": list(key)}, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(scope: str, cursor: str | None, *, arity: int | tuple[int, ...]) -> list[Any] | None:
    """The key a cursor of ``scope`` holds, of ``arity`` values (or one of several arities)."""
    arities = (arity,) if isinstance(arity, int) else arity
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The cursor is not valid.", slug="bad-cursor") from exc
    if (
        not isinstance(data, dict)
        or data.get("s") != scope
        or not isinstance(data.get("k"), list)
        or len(data["k"]) not in arities
    ):
        raise BadRequest("The cursor does not belong to this list.", slug="bad-cursor")
    if not all(_usable_key(v) for v in data["k"]):
        raise BadRequest("The cursor is not valid.", slug="bad-cursor")
    return list(data["k"])


def _usable_key(value: Any) -> bool:
    """A key a query can compare with: text the databases can store, or an integer within 64
    bits (a cursor is written by us, but read from the client, who may have written it)."""
    if isinstance(value, str):
        return storable(value)
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX


def paginate(
    request: Request,
    response: Response,
    items: Sequence[T],
    *,
    limit: int,
    scope: str,
    key: Any,
) -> Page[T]:
    """``items`` holds up to ``limit + 1`` rows; the extra one only says another page exists.
    ``key(item)`` gives the sort key of an item."""
    shown = list(items[:limit])
    next_cursor = None
    if len(items) > limit and shown:
        next_cursor = encode_cursor(scope, key(shown[-1]))
        response.headers["Link"] = next_link(request, next_cursor, limit)
    return Page[T](items=shown, next_cursor=next_cursor)


def next_link(request: Request, next_cursor: str, limit: int) -> str:
    """The ``Link`` header's value for the next page: a relative reference, so the link stays
    right behind the gateway."""
    path = request.scope.get("raw_path") or quote(request.scope["path"]).encode()
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "limit")]
    query += [("cursor", next_cursor), ("limit", str(limit))]
    return f'<{path.decode("latin-1")}?{urlencode(query)}>; rel="next"'


def decode_id_cursor(scope: str, cursor: str | None) -> uuid.UUID | None:
    """For lists keyed by one id: the id after which the next page starts."""
    key = decode_cursor(scope, cursor, arity=1)
    return None if key is None else _cursor_id(key[0])


def encode_marked_id_cursor(scope: str, after: uuid.UUID, mark: str | None) -> str:
    """A cursor of one id that also says how to read the next page (``mark``), for lists read
    in more than one way (the home timeline: from the reader's inbox, or older, on demand)."""
    return encode_cursor(scope, [str(after), *([mark] if mark else [])])


def decode_marked_id_cursor(scope: str, cursor: str | None, mark: str) -> tuple[uuid.UUID | None, bool]:
    """The id after which the next page starts, and whether the cursor carries ``mark``."""
    key = decode_cursor(scope, cursor, arity=(1, 2))
    if key is None:
        return None, False
    if len(key) == 2 and key[1] != mark:
        raise BadRequest("The cursor is not valid.", slug="bad-cursor")
    return _cursor_id(key[0]), len(key) == 2


def decode_serial_cursor(scope: str, cursor: str | None) -> int | None:
    """For lists keyed by a serial id (an ``INTEGER`` column): the id the next page starts
    after, within the column's range."""
    key = decode_cursor(scope, cursor, arity=1)
    if key is None:
        return None
    if not isinstance(key[0], int) or not 0 <= key[0] <= SERIAL_MAX:
        raise BadRequest("The cursor is not valid.", slug="bad-cursor")
    return key[0]


def _cursor_id(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise BadRequest("The cursor is not valid.", slug="bad-cursor")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise BadRequest("The cursor is not valid.", slug="bad-cursor") from exc
