"""Helpers for the records tests: officers made through identity, matters and holds placed
through the gateway, owners' events delivered to records the way their relays deliver them,
and a look at records' rows and outbox."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from services.identity.manage import grant_role
from services.identity.models import Persona
from services.records.models import outbox_tables
from tests.helpers import auth, login, register, unique

RECORDS = "/api/v1/records"
POLICIES = f"{RECORDS}/policies"
MATTERS = f"{RECORDS}/matters"
DISPOSITIONS = f"{RECORDS}/dispositions"
AUDIT = f"{RECORDS}/audit"


async def officer(suite: Any, handle: str = "rec", role: str = "records") -> tuple[str, str]:
    """A professional persona holding ``role``, granted the way an operator grants it at
    identity; records learns it from identity's event. Returns (token, persona id)."""
    email = await register(suite.client, unique(handle))
    assert await grant_role(suite.identity.state.database, email, role, suite.identity.state.outbox)
    tokens = await login(suite.client, email)
    await suite.deliver()
    return tokens["access_token"], tokens["persona_id"]


async def account_of(suite: Any, persona_id: str) -> str:
    """The account of a persona, read from identity's own table (what an officer learns from
    the organisation's directory)."""
    async with suite.identity.state.database.sessionmaker() as session:
        account = await session.scalar(
            select(col(Persona.account_id)).where(col(Persona.id) == uuid.UUID(persona_id))
        )
    assert account is not None
    return str(account)


async def matter(suite: Any, token: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Request for the 2026 files",
        "reference": unique("ATI"),
        "reason": "An access-to-information request.",
        **fields,
    }
    resp = await suite.client.post(MATTERS, json=body, headers=auth(token))
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def place(suite: Any, token: str, matter_id: str, **fields: Any) -> httpx.Response:
    body = {"date_from": (datetime.now(UTC) - timedelta(days=365)).isoformat(), **fields}
    resp: httpx.Response = await suite.client.post(
        f"{MATTERS}/{matter_id}/holds", json=body, headers=auth(token)
    )
    return resp


async def hold(suite: Any, token: str, matter_id: str, **fields: Any) -> dict[str, Any]:
    resp = await place(suite, token, matter_id, **fields)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def release(suite: Any, token: str, matter_id: str, hold_id: str) -> httpx.Response:
    resp: httpx.Response = await suite.client.post(
        f"{MATTERS}/{matter_id}/holds/{hold_id}/release",
        json={"reason": "The matter is settled."},
        headers=auth(token),
    )
    return resp


async def policies(suite: Any, token: str) -> dict[str, Any]:
    resp = await suite.client.get(POLICIES, headers=auth(token))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def put_policies(
    suite: Any, token: str, *changes: dict[str, Any], version: int | None = None, acknowledge: bool = False
) -> httpx.Response:
    """Changes the classes given, from the version read now unless ``version`` is given."""
    if version is None:
        version = (await policies(suite, token))["version"]
    body = {"version": version, "policies": list(changes), "acknowledge_holds": acknowledge}
    resp: httpx.Response = await suite.client.put(POLICIES, json=body, headers=auth(token))
    return resp


def dispose(klass: str, keep_days: int = 0, **fields: Any) -> dict[str, Any]:
    return {"class": klass, "keep_days": keep_days, "then": "dispose", **fields}


async def run_disposition(suite: Any, token: str) -> dict[str, Any]:
    """Starts a run as an officer, waits for it in the background, and reads its certificate."""
    resp = await suite.client.post(DISPOSITIONS, headers=auth(token))
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "running", resp.text
    await suite.records.state.disposition_runs.join()
    done = await suite.client.get(resp.headers["location"], headers=auth(token))
    assert done.status_code == 200, done.text
    certificate: dict[str, Any] = done.json()
    return certificate


def problem(resp: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"] == "application/problem+json", resp.headers["content-type"]
    body: dict[str, Any] = resp.json()
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


def iso(at: datetime) -> str:
    return at.isoformat()


async def send(
    suite: Any,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    *,
    source: str = "feed",
    event_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Delivers one event to records the way its publisher's relay does; returns the answer."""
    event = {
        "id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "source": source,
        "subject": subject,
        "time": (at or datetime.now(UTC)).isoformat(),
        "data": data,
    }
    token = suite.records.state.settings.internal_token.get_secret_value()
    resp = await suite.client.post(
        "http://records/internal/events", json={"events": [event]}, headers=auth(token)
    )
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def post_data(
    post_id: uuid.UUID,
    author_id: uuid.UUID,
    change: str,
    at: datetime,
    *,
    created_at: datetime | None = None,
    body: str | None = None,
    context: str = "professional",
    audience: str = "organisation",
    group_id: uuid.UUID | None = None,
    deleted_at: datetime | None = None,
    moderation: str | None = None,
) -> dict[str, Any]:
    """``internal.records.post`` as feed publishes it; the text keys only with ``body``."""
    data: dict[str, Any] = {
        "id": str(post_id),
        "author_id": str(author_id),
        "context": context,
        "audience": audience,
        "group_id": str(group_id) if group_id else None,
        "created_at": iso(created_at or at),
        "change": change,
        "at": iso(at),
        "deleted_at": iso(deleted_at) if deleted_at else None,
        "moderation": moderation,
    }
    if body is not None:
        data |= {"body": body, "links": [], "mentions": [], "tags": []}
    return data


def comment_data(
    comment_id: uuid.UUID,
    post_id: uuid.UUID,
    author_id: uuid.UUID,
    change: str,
    at: datetime,
    *,
    created_at: datetime | None = None,
    body: str | None = None,
    context: str = "professional",
    group_id: uuid.UUID | None = None,
    deleted_at: datetime | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(comment_id),
        "post_id": str(post_id),
        "parent_id": None,
        "author_id": str(author_id),
        "context": context,
        "group_id": str(group_id) if group_id else None,
        "created_at": iso(created_at or at),
        "change": change,
        "at": iso(at),
        "deleted_at": iso(deleted_at) if deleted_at else None,
        "moderation": None,
    }
    if body is not None:
        data |= {"body": body, "mentions": []}
    return data


def reaction_data(
    post_id: uuid.UUID,
    persona_id: uuid.UUID,
    change: str,
    at: datetime,
    *,
    kind: str = "like",
    context: str = "professional",
    group_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    return {
        "post_id": str(post_id),
        "persona_id": str(persona_id),
        "kind": kind,
        "context": context,
        "group_id": str(group_id) if group_id else None,
        "change": change,
        "at": iso(at),
    }


async def record_post(
    suite: Any, author_id: uuid.UUID, created_at: datetime, body: str = "A post for the record", **fields: Any
) -> uuid.UUID:
    """A post in the records copy, created at ``created_at`` (as feed would have told it)."""
    post_id = uuid.uuid4()
    data = post_data(post_id, author_id, "created", created_at, body=body, **fields)
    await send(suite, "internal.records.post", str(post_id), data)
    return post_id


async def rows(suite: Any, model: Any, **where: Any) -> list[Any]:
    """Records' rows of ``model`` matching ``where`` (column = value)."""
    async with suite.records.state.database.sessionmaker() as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list((await session.scalars(query)).all())


async def published(suite: Any, *types: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, subject, data) of the events records wrote to its outbox, in order."""
    table = outbox_tables.event
    async with suite.records.state.database.sessionmaker() as session:
        query = select(table.c.type, table.c.subject, table.c.data).order_by(table.c.seq)
        if types:
            query = query.where(table.c.type.in_(types))
        found = (await session.execute(query)).all()
    return [(r.type, r.subject, json.loads(r.data)) for r in found]
