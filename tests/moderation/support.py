"""Helpers for the moderation tests: people and staff made through identity, content made
through feed and groups, reports filed through the gateway, and a look at moderation's rows
and outbox."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from services.identity.manage import grant_role
from services.moderation.models import outbox_tables
from tests.helpers import auth, create_group, login, person, register, unique

REPORTS = "/api/v1/reports"
QUEUE = "/api/v1/moderation/reports"
NOTICES = "/api/v1/me/notices"
GROUPS_PATH = "/api/v1/groups"


async def people(suite: Any, *handles: str) -> dict[str, tuple[str, str]]:
    """Registers each handle; returns {handle: (token, persona id)} with every replica fed."""
    found = {h: await person(suite.client, unique(h)) for h in handles}
    await suite.deliver()
    return found


async def staff(suite: Any, handle: str, *roles: str) -> tuple[str, str]:
    """A professional persona holding ``roles`` (``moderator`` by default), granted the way an
    operator grants them at identity; moderation learns them from identity's event."""
    email = await register(suite.client, unique(handle))
    for role in roles or ("moderator",):
        # the operator's command, with the suite's outbox: its event reaches moderation
        assert await grant_role(suite.identity.state.database, email, role, suite.identity.state.outbox)
    tokens = await login(suite.client, email)
    await suite.deliver()
    return tokens["access_token"], tokens["persona_id"]


async def post(
    suite: Any, token: str, body: str = "Something worth reading today", **fields: Any
) -> dict[str, Any]:
    resp = await suite.client.post("/api/v1/posts", json={"body": body, **fields}, headers=auth(token))
    assert resp.status_code == 201, resp.text
    await suite.deliver()
    created: dict[str, Any] = resp.json()
    return created


async def comment(suite: Any, token: str, post_id: str, body: str = "A comment on it") -> dict[str, Any]:
    resp = await suite.client.post(
        f"/api/v1/posts/{post_id}/comments", json={"body": body}, headers=auth(token)
    )
    assert resp.status_code == 201, resp.text
    await suite.deliver()
    created: dict[str, Any] = resp.json()
    return created


async def group(suite: Any, token: str, name: str = "cloud", **fields: Any) -> dict[str, Any]:
    made = await create_group(suite.client, token, unique(name), **fields)
    await suite.deliver()
    return made


async def file(
    suite: Any, token: str, target_type: str, target_id: str, category: str = "spam", **fields: Any
) -> httpx.Response:
    body = {"target": {"type": target_type, "id": target_id}, "category": category, **fields}
    resp: httpx.Response = await suite.client.post(REPORTS, json=body, headers=auth(token))
    return resp


async def filed(suite: Any, token: str, target_type: str, target_id: str, **fields: Any) -> dict[str, Any]:
    resp = await file(suite, token, target_type, target_id, **fields)
    assert resp.status_code == 201, resp.text
    report: dict[str, Any] = resp.json()
    return report


def problem(resp: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"] == "application/problem+json", resp.headers["content-type"]
    body: dict[str, Any] = resp.json()
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


def same_problem(a: httpx.Response, b: httpx.Response) -> None:
    """Two answers that must not be told apart (apart from the path and the trace id)."""
    strip = {"instance", "trace_id"}
    first = {k: v for k, v in problem(a, a.status_code).items() if k not in strip}
    second = {k: v for k, v in problem(b, b.status_code).items() if k not in strip}
    assert a.status_code == b.status_code and first == second, (a.text, b.text)


async def published(suite: Any, *types: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, subject, data) of the events moderation wrote to its outbox, in order."""
    table = outbox_tables.event
    async with suite.moderation.state.database.sessionmaker() as session:
        query = select(table.c.type, table.c.subject, table.c.data).order_by(table.c.seq)
        if types:
            query = query.where(table.c.type.in_(types))
        rows = (await session.execute(query)).all()
    return [(r.type, r.subject, json.loads(r.data)) for r in rows]


async def rows(suite: Any, model: Any, **where: Any) -> list[Any]:
    """Moderation's rows of ``model`` matching ``where`` (column = value)."""
    async with suite.moderation.state.database.sessionmaker() as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list((await session.scalars(query)).all())


async def resolve(suite: Any, token: str, report_id: str, action: str, **fields: Any) -> httpx.Response:
    body = {"action": action, "reason": "Against the rules of this place.", **fields}
    resp: httpx.Response = await suite.client.post(
        f"{QUEUE}/{report_id}/resolve", json=body, headers=auth(token)
    )
    return resp


async def queue(suite: Any, token: str, path: str = QUEUE, **params: Any) -> list[dict[str, Any]]:
    """Every item of a queue, following the cursors."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await suite.client.get(path, params=query, headers=auth(token))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        out.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return out


def as_uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)
