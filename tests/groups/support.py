"""Helpers for the groups tests: people, scripted feed events, and a look at what groups
published."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from services.groups.models import Membership, outbox_tables
from tests.helpers import auth, person

GROUPS = "/api/v1/groups"


async def people(suite: Any, *handles: str) -> dict[str, tuple[str, str]]:
    """Registers each handle; returns {handle: (token, persona id)} with every replica fed."""
    found = {h: await person(suite.client, h) for h in handles}
    await suite.deliver()
    return found


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"] == "application/problem+json", resp.headers["content-type"]
    body: dict[str, Any] = resp.json()
    return body


def same_problem(a: Any, b: Any) -> None:
    """Two answers that must not be told apart (apart from the path and the trace id)."""
    strip = {"instance", "trace_id"}
    first = {k: v for k, v in problem(a, a.status_code).items() if k not in strip}
    second = {k: v for k, v in problem(b, b.status_code).items() if k not in strip}
    assert a.status_code == b.status_code and first == second, (a.text, b.text)


async def join(suite: Any, group_id: str, token: str, persona_id: str) -> Any:
    return await suite.client.put(f"{GROUPS}/{group_id}/members/{persona_id}", headers=auth(token))


async def members(suite: Any, group_id: str, token: str) -> dict[str, str]:
    """{persona id: role} of every member, following the cursors."""
    out: dict[str, str] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        resp = await suite.client.get(f"{GROUPS}/{group_id}/members", params=params, headers=auth(token))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        out.update({m["persona_id"]: m["role"] for m in body["items"]})
        cursor = body["next_cursor"]
        if not cursor:
            return out


async def published(suite: Any, *types: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, subject, data) of the events groups wrote to its outbox, in order."""
    table = outbox_tables.event
    async with suite.groups.state.database.sessionmaker() as session:
        query = select(table.c.type, table.c.subject, table.c.data).order_by(table.c.seq)
        if types:
            query = query.where(table.c.type.in_(types))
        rows = (await session.execute(query)).all()
    return [(r.type, r.subject, json.loads(r.data)) for r in rows]


async def set_joined_at(suite: Any, group_id: str, persona_id: str, when: datetime) -> None:
    """Backdates a membership, as if the persona had joined then."""
    async with suite.groups.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Membership)
            .where(
                Membership.group_id == uuid.UUID(group_id),  # type: ignore[arg-type]
                Membership.persona_id == uuid.UUID(persona_id),  # type: ignore[arg-type]
            )
            .values(joined_at=when)
        )


def event(
    event_type: str, subject: str, data: dict[str, Any], *, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "source": "feed",
        "subject": subject,
        "time": datetime.now().astimezone().isoformat(),
        "data": data,
    }


async def send(suite: Any, *events: dict[str, Any]) -> Any:
    """Delivers events to groups the way the feed's relay does."""
    token = suite.groups.state.settings.internal_token.get_secret_value()
    resp = await suite.client.post(
        "http://groups/internal/events", json={"events": list(events)}, headers=auth(token)
    )
    assert resp.status_code == 200, resp.text
    return resp


class Feed:
    """Scripts the feed's activity events for one group, with chosen timestamps."""

    def __init__(self, group_id: str | None, context: str = "professional") -> None:
        self.group_id = group_id
        self.context = context

    def post(self, author: str, at: datetime, post_id: str | None = None) -> dict[str, Any]:
        post_id = post_id or str(uuid.uuid4())
        return event(
            "post.created",
            post_id,
            {
                "id": post_id,
                "author_id": author,
                "context": self.context,
                "audience": "group",
                "group_id": self.group_id,
                "created_at": at.isoformat(),
            },
        )

    def comment(self, post: dict[str, Any], author: str, at: datetime) -> dict[str, Any]:
        comment_id = str(uuid.uuid4())
        return event(
            "comment.created",
            post["subject"],
            {
                "id": comment_id,
                "post_id": post["subject"],
                "parent_id": None,
                "author_id": author,
                "context": self.context,
                "group_id": self.group_id,
                "post_author_id": post["data"]["author_id"],
                "post_created_at": post["data"]["created_at"],
                "created_at": at.isoformat(),
            },
        )

    def reaction(
        self, post: dict[str, Any], persona: str, at: datetime, kind: str = "like"
    ) -> dict[str, Any]:
        return event(
            "reaction.added",
            post["subject"],
            {
                "post_id": post["subject"],
                "persona_id": persona,
                "kind": kind,
                "context": self.context,
                "group_id": self.group_id,
                "created_at": at.isoformat(),
            },
        )

    def unreact(self, post: dict[str, Any], persona: str, kind: str = "like") -> dict[str, Any]:
        return event(
            "reaction.removed",
            post["subject"],
            {
                "post_id": post["subject"],
                "persona_id": persona,
                "kind": kind,
                "context": self.context,
                "group_id": self.group_id,
            },
        )

    def delete_post(self, post: dict[str, Any], at: datetime) -> dict[str, Any]:
        return event(
            "post.deleted",
            post["subject"],
            {
                "id": post["subject"],
                "author_id": post["data"]["author_id"],
                "context": self.context,
                "group_id": self.group_id,
                "deleted_at": at.isoformat(),
            },
        )

    def delete_comment(self, comment: dict[str, Any], at: datetime) -> dict[str, Any]:
        return event(
            "comment.deleted",
            comment["subject"],
            {
                "id": comment["data"]["id"],
                "post_id": comment["data"]["post_id"],
                "group_id": self.group_id,
                "deleted_at": at.isoformat(),
            },
        )


async def backdate_group(suite: Any, group_id: str, when: datetime) -> None:
    """Makes a group look as if it had been created at ``when``."""
    from services.groups.models import Group

    async with suite.groups.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Group).where(Group.id == uuid.UUID(group_id)).values(created_at=when)  # type: ignore[arg-type]
        )
