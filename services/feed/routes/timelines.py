"""Timelines, newest first, with opaque cursors."""

from __future__ import annotations

import inspect
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match, Route
from starlette.types import Scope

from domain.principal import Principal, current_persona, current_principal
from kit.db import database_of
from kit.pagination import (
    CURSOR_ALPHABET,
    DEFAULT_LIMIT,
    MAX_CURSOR,
    MAX_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_marked_id_cursor,
    encode_marked_id_cursor,
)
from kit.timeutil import utcnow
from services.feed import deps, home, reading
from services.feed.deps import CurrentPersona, GroupsDep, SessionDep
from services.feed.listing import json_page, posts_page
from services.feed.schemas import PostPublic, TagName

router = APIRouter(prefix="/api/v1/timelines", tags=["timelines"])


OLDER = "older"


@router.get("/home", summary="The caller's home timeline", response_model=Page[PostPublic])
async def get_home_timeline(
    request: Request, caller: CurrentPersona, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Response:
    """Own posts, posts of followed personas and posts in the caller's groups, in the
    token's context only. Announcements pinned for the context lead the first page."""
    return await _home(request, caller, limit, cursor)


async def _home(request: Request, caller: Principal, limit: int, cursor: str | None) -> Response:
    scope = f"home:{caller.persona_id}"
    # A cursor is the last id shown, marked when the next page lies below the reader's inbox
    # (PostgreSQL; decision 0012). A bad cursor fails before any query.
    before, older = decode_marked_id_cursor(scope, cursor, OLDER)
    page = await home.home_page(
        database_of(request),
        caller,
        before=before,
        older=older,
        limit=limit,
        now=utcnow(),
        inbox_size=deps.settings_of(request).home_inbox_size,
    )
    # The items are already JSON in the published shape (see the home module).
    next_cursor = (
        None
        if page.after is None
        else encode_marked_id_cursor(scope, page.after, OLDER if page.older else None)
    )
    return json_page(request, page.items, next_cursor, limit)


@router.get("/organisation", summary="Everything posted to the caller's whole context")
async def get_organisation_timeline(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[PostPublic]:
    found = await reading.organisation(session, caller, cursor=cursor, limit=limit)
    return posts_page(request, response, found, limit=limit)


@router.get("/personas/{persona_id}", summary="A persona's posts that the caller can see")
async def get_persona_timeline(
    persona_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[PostPublic]:
    """A persona of the other context, or one no longer active, is a 404."""
    found = await reading.by_persona(session, caller, persona_id, cursor=cursor, limit=limit)
    return posts_page(request, response, found, limit=limit)


@router.get("/groups/{group_id}", summary="A group's posts")
async def get_group_timeline(
    group_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    groups: GroupsDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[PostPublic]:
    """Members read their group; anyone of the context reads an open group. Any other group
    answers 404, as one that does not exist. Posts the group's owners pinned lead the first
    page."""
    found = await reading.in_group(session, caller, group_id, cursor=cursor, limit=limit, groups=groups)
    return posts_page(request, response, found, limit=limit)


@router.get("/tags/{tag}", summary="Posts with a tag that the caller can see")
async def get_tag_timeline(
    tag: Annotated[TagName, Path(description="The tag without its `#`; case does not matter.")],
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[PostPublic]:
    found = await reading.tagged(session, caller, tag, cursor=cursor, limit=limit)
    return posts_page(request, response, found, limit=limit)


HOME_PATH = router.prefix + "/home"


def _well_formed(query: str) -> tuple[int, str | None] | None:
    """The home timeline's ``limit`` and ``cursor`` when the query gives each at most once, in
    the plain form ``get_home_timeline`` accepts (digits within bounds; a cursor's own
    characters), with no name that would decode to either; None for anything else.
    A parameter added to ``get_home_timeline`` must be added here too (decision 0013;
    ``HomeFastRoute`` refuses to start with parameters it does not know)."""
    limit, cursor, seen = DEFAULT_LIMIT, None, set()
    for pair in query.split("&") if query else ():
        name, _, value = pair.partition("=")
        if name in seen or "%" in name or "+" in name:
            return None
        seen.add(name)
        if name == "limit":
            if not (value.isascii() and value.isdigit() and len(value) <= 3 and 1 <= int(value) <= MAX_LIMIT):
                return None
            limit = int(value)
        elif name == "cursor":
            if not 0 < len(value) <= MAX_CURSOR or not CURSOR_ALPHABET.issuperset(value):
                return None
            cursor = value
    return limit, cursor


PLAIN_QUERY = "feed.home_query"


class HomeFastRoute(Route):
    """``GET /api/v1/timelines/home`` without FastAPI's parameter solving, for the request that
    needs none. It matches only a GET whose query is plain (``_well_formed``); every other
    request matches no further than the documented route, ``get_home_timeline``'s, which
    answers it as before (its 405 and 422s included), and so does every request while the app
    has dependency overrides. It checks the token with the route's own dependencies, serves
    the page with the same ``_home``, and names the request by that route (``scope["route"]``:
    metrics, traces, logs)."""

    def __init__(self, route: APIRoute) -> None:
        parameters = set(inspect.signature(route.endpoint).parameters)
        if parameters != {"request", "caller", "limit", "cursor"}:
            raise RuntimeError(f"the home timeline's fast path does not know {parameters}")
        super().__init__(HOME_PATH, _serve_plain, methods=["GET"], include_in_schema=False)
        self.route = route

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "GET":
            return Match.NONE, {}
        if getattr(scope.get("app"), "dependency_overrides", None):
            return Match.NONE, {}
        match, child = super().matches(scope)
        if match is not Match.FULL:
            return Match.NONE, {}
        params = _well_formed(scope.get("query_string", b"").decode("latin-1"))
        if params is None:
            return Match.NONE, {}
        return Match.FULL, {**child, "route": self.route, PLAIN_QUERY: params}


async def _serve_plain(request: Request) -> Response:
    limit, cursor = request.scope[PLAIN_QUERY]
    caller = await current_persona(await current_principal(request))
    return await _home(request, caller, limit, cursor)


def home_fast_path() -> HomeFastRoute:
    """The fast path's route, to be matched before the API's routes."""
    route = next(r for r in router.routes if isinstance(r, APIRoute) and r.path == HOME_PATH)
    return HomeFastRoute(route)
