"""Plain helpers that drive the suite the way a client would, and one that watches its SQL."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import event

from tests.mailbox import logged_mail

PASSWORD = "correct horse battery staple"


@contextlib.contextmanager
def sql_of(app: Any) -> Iterator[list[str]]:
    """The SQL statements an app of the suite runs through SQLAlchemy inside the block."""
    seen: list[str] = []
    engine = app.state.database.engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def unique(name: str) -> str:
    """``name`` with a random suffix: a handle nobody else on a shared suite has."""
    return f"{name}_{uuid.uuid4().hex[:8]}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    client: httpx.AsyncClient, handle: str, *, email: str | None = None, password: str = PASSWORD
) -> str:
    """Registers and confirms the address with the token identity mailed (to its log, where no
    SMTP server is configured), as the person would."""
    email = email or f"{handle}@agency.example"
    mail = logged_mail()
    mail.take(handle)
    resp = await client.post(
        "/api/v1/accounts",
        json={"email": email, "password": password, "handle": handle, "display_name": handle.title()},
    )
    assert resp.status_code == 202, resp.text
    token = mail.take(handle)
    if token is not None:  # none when the address has an account already
        await verify(client, token, password)
    return email


async def verify(
    client: httpx.AsyncClient, token: str, password: str = PASSWORD, **fields: Any
) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/accounts/verification", json={"token": token, "password": password, **fields}
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def login(
    client: httpx.AsyncClient, email: str, *, password: str = PASSWORD, persona: str = "professional"
) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password, "persona": persona},
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def person(client: httpx.AsyncClient, handle: str) -> tuple[str, str]:
    """Registers and signs in; returns (access token, professional persona id)."""
    email = await register(client, handle)
    tokens = await login(client, email)
    return tokens["access_token"], tokens["persona_id"]


CHARTER = {
    "objective": "Shared results, measured quarterly.",
    "audience": "Colleagues.",
    "review_at": "2030-01-01",
}
"""The least charter a group is created with: objective, audience and review date, in words
of no language (no stop word) so that a group's text alone decides its detected language."""


async def create_group(client: httpx.AsyncClient, token: str, handle: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": handle.title(),
        "handle": handle,
        "purpose": "Work together on a shared purpose.",
        **fields,
        "charter": {**CHARTER, **fields.get("charter", {})},
    }
    resp = await client.post("/api/v1/groups", json=body, headers=auth(token))
    assert resp.status_code == 201, resp.text
    group: dict[str, Any] = resp.json()
    return group


async def make_role(suite: Any, email: str, role: str) -> None:
    """Grants a role the way an operator does (python -m services.identity.manage), telling
    moderation through the suite's own outbox."""
    from services.identity.manage import grant_role

    assert await grant_role(suite.identity.state.database, email, role, suite.identity.state.outbox)


async def admin(suite: Any, handle: str = "root") -> tuple[str, str]:
    """An administrator's (access token, persona id)."""
    email = await register(suite.client, handle)
    await make_role(suite, email, "admin")
    tokens = await login(suite.client, email)
    return tokens["access_token"], tokens["persona_id"]


async def with_personal(client: httpx.AsyncClient, handle: str, **fields: Any) -> dict[str, Any]:
    """Registers someone with both personas; returns their tokens and ids."""
    email = await register(client, handle)
    pro = await login(client, email)
    body = {"handle": f"{handle}_home", "display_name": f"{handle.title()} at home", **fields}
    resp = await client.post("/api/v1/me/personas", json=body, headers=auth(pro["access_token"]))
    assert resp.status_code == 201, resp.text
    personal = await login(client, email, persona="personal")
    return {
        "email": email,
        "pro": pro["access_token"],
        "pro_id": pro["persona_id"],
        "personal": personal["access_token"],
        "personal_id": personal["persona_id"],
        "refresh": personal["refresh_token"],
    }
