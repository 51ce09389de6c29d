"""Helpers for the feed's tests: people, posts, and the groups service's events sent straight
to feed (the event contract, independent of the groups service's own routes)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import event

from tests.helpers import auth, person
from tests.tokens import claims, sign


async def people(suite: Any, *handles: str) -> list[tuple[str, str]]:
    """Registers each handle; returns their (token, persona id), replicas delivered to feed."""
    made = [await person(suite.client, handle) for handle in handles]
    await suite.deliver()
    return made


def token_with_roles(suite: Any, persona_id: str, *roles: str, context: str = "professional") -> str:
    """A token as identity would sign it for a persona holding ``roles``."""
    return sign(suite.keys.active, claims(persona_id, roles=list(roles), ctx=context))


async def post(client: httpx.AsyncClient, token: str, body: str, **fields: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/posts", json={"body": body, **fields}, headers=auth(token))
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def follow(client: httpx.AsyncClient, token: str, persona_id: str) -> None:
    resp = await client.put(f"/api/v1/following/{persona_id}", headers=auth(token))
    assert resp.status_code in (200, 201), resp.text


async def bodies(client: httpx.AsyncClient, token: str, path: str, **params: Any) -> list[str]:
    resp = await client.get(path, headers=auth(token), params=params)
    assert resp.status_code == 200, resp.text
    return [p["body"] for p in resp.json()["items"]]


async def every_page(
    client: httpx.AsyncClient, token: str, path: str, field: str = "body", **params: Any
) -> list[Any]:
    """``field`` of every item of a list, following its cursors to the last page."""
    found: list[Any] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await client.get(path, params=query, headers=auth(token))
        assert resp.status_code == 200, resp.text
        found += [item[field] for item in resp.json()["items"]]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            return found


async def send_events(
    suite: Any,
    *events: tuple[str, str, dict[str, Any]],
    time: datetime | None = None,
    source: str = "groups",
) -> None:
    """Delivers (type, subject, data) events to feed as another service's relay would, stamped
    ``time`` (now by default)."""
    token = suite.feed.state.settings.internal_token.get_secret_value()
    now = (time or datetime.now(UTC)).isoformat()
    batch = [
        {"id": str(uuid.uuid4()), "type": t, "source": source, "subject": s, "time": now, "data": d}
        for t, s, d in events
    ]
    async with httpx.AsyncClient(transport=suite.router, base_url="http://feed") as client:
        resp = await client.post("/internal/events", json={"events": batch}, headers=auth(token))
    assert resp.status_code == 200, resp.text


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def make_group(
    suite: Any,
    members: dict[str, str],
    *,
    visibility: str = "closed",
    context: str = "professional",
    archived: bool = False,
) -> str:
    """A group as groups' events describe it; ``members`` maps persona id to role."""
    group_id = str(uuid.uuid4())
    data = {
        "id": group_id,
        "context": context,
        "handle": f"g{group_id[:8]}",
        "name": "A group",
        "visibility": visibility,
        "archived": archived,
        "updated_at": _now(),
    }
    await send_events(
        suite,
        ("group.created", group_id, data),
        *[("membership.added", group_id, membership(group_id, p, r, context)) for p, r in members.items()],
    )
    return group_id


def membership(
    group_id: str, persona_id: str, role: str = "member", context: str = "professional"
) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "persona_id": persona_id,
        "context": context,
        "role": role,
        "joined_at": _now(),
        "updated_at": _now(),
    }


def moderation_data(
    target_type: str, target_id: str, *, context: str = "professional", **fields: Any
) -> dict[str, Any]:
    """The data of a ``moderation.*`` event (decision 0032) about ``target_id``."""
    return {
        "context": context,
        "report_id": str(uuid.uuid4()),
        "action_id": str(uuid.uuid4()),
        "target_type": target_type,
        "target_id": target_id,
        "subject_id": None,
        "until": None,
        **fields,
    }


async def moderate(
    suite: Any,
    event_type: str,
    target_type: str,
    *target_ids: str,
    time: datetime | None = None,
    **fields: Any,
) -> None:
    """Delivers moderation's ``event_type`` about each of ``target_ids`` to feed, as
    moderation's relay would."""
    events = [(event_type, t, moderation_data(target_type, t, **fields)) for t in target_ids]
    await send_events(suite, *events, time=time, source="moderation")


def group_data(group_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": group_id,
        "context": "professional",
        "handle": f"g{group_id[:8]}",
        "name": "A group",
        "visibility": "closed",
        "archived": False,
        "updated_at": _now(),
        **fields,
    }


async def set_persona_status(suite: Any, persona_id: str, handle: str, status: str) -> None:
    await send_events(
        suite,
        (
            "persona.updated",
            persona_id,
            {
                "id": persona_id,
                "context": "professional",
                "handle": handle,
                "display_name": handle.title(),
                "status": status,
                "updated_at": _now(),
            },
        ),
    )


class _Recorded:
    """A raw connection whose ``fetch`` statements are recorded."""

    def __init__(self, connection: Any, seen: list[tuple[str, Any]]) -> None:
        self._connection, self._seen = connection, seen

    async def fetch(self, sql: str, *args: Any, **options: Any) -> Any:
        self._seen.append((sql, args))
        return await self._connection.fetch(sql, *args, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


@contextlib.contextmanager
def statements(suite: Any) -> Iterator[list[tuple[str, Any]]]:
    """Collects the SQL statements (with their parameters) the feed service runs inside the
    block: through SQLAlchemy, and on asyncpg directly (``Database.raw``, which
    ``raw_fetch`` runs on too)."""
    seen: list[tuple[str, Any]] = []
    database = suite.feed.state.database
    engine = database.engine.sync_engine
    raw = database.raw

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    @contextlib.asynccontextmanager
    async def record_raw(*args: Any, **options: Any) -> AsyncIterator[Any]:
        async with raw(*args, **options) as connection:
            yield _Recorded(connection, seen)

    event.listen(engine, "before_cursor_execute", record)
    database.raw = record_raw
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
        del database.raw
