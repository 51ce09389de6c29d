"""Lists as feed's reads return them, and as the routes answer them.

A read of a list (comments, notifications, follows, a post's history, the timelines but the
home timeline) decodes the client's cursor itself, after the checks that come first (the
post or group a list belongs to must be visible: a 404 before a bad cursor's 400), and returns
a ``Listing``. The route turns it into the published ``Page`` with ``page_of``. A search ranks its matches
rather than listing them in key order: it answers its page whole, cursor included
(``search.Found``, each item already JSON), which the route publishes with ``json_page``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request, Response
from pydantic_core import to_json

from kit.pagination import Page, next_link, paginate
from kit.timeutil import utcnow
from services.feed.schemas import PostPublic, post_public

Row = TypeVar("Row")
Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Listing(Generic[Row]):
    """Up to one row more than the page holds (the extra one only says there is more), the rows
    that lead a first page (pinned posts), the name the list's cursors carry, and a row's key
    in a cursor."""

    scope: str
    rows: Sequence[Row]
    key: Callable[[Row], list[str]]
    lead: Sequence[Row] = ()


def by_id(row: Any) -> list[str]:
    """The cursor key of a row whose first column is a model keyed by a UUIDv7 ``id``."""
    return [str(row[0].id)]


def page_of(
    request: Request, response: Response, listing: Listing[Row], *, limit: int, item: Callable[[Row], Item]
) -> Page[Item]:
    """The page: the leading rows, then up to ``limit`` rows, each mapped by ``item``; and the
    next page's cursor (also in a ``Link`` header) when there is one."""
    page = paginate(request, response, listing.rows, limit=limit, scope=listing.scope, key=listing.key)
    return Page[Item](items=[item(row) for row in [*listing.lead, *page.items]], next_cursor=page.next_cursor)


def posts_page(
    request: Request, response: Response, listing: Listing[Any], *, limit: int
) -> Page[PostPublic]:
    """``page_of`` for a list of ``timelines.posts_for`` rows, ``pinned`` as of now."""
    now = utcnow()
    return page_of(request, response, listing, limit=limit, item=lambda row: post_public(row, now))


def json_page(request: Request, items: Sequence[str], next_cursor: str | None, limit: int) -> Response:
    """A page whose items are already JSON in the published shape (the home timeline's, a
    search's): the body is put together here rather than validated and serialised again; the
    next page's cursor is also in a ``Link`` header."""
    body = f'{{"items":[{",".join(items)}],"next_cursor":{to_json(next_cursor).decode()}}}'
    headers = {"Link": next_link(request, next_cursor, limit)} if next_cursor else None
    return Response(body, media_type="application/json", headers=headers)
