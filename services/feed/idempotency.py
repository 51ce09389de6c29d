"""``Idempotency-Key`` on creates: a repeat of the same request by the same persona gets the
first answer again; the same key with another request is a 422.

The key is stored in the create's own transaction, so a concurrent repeat cannot create a
second row: its commit fails on the key's primary key and it replays the winner's answer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.errors import Conflict, Unprocessable
from services.feed.models import IdempotencyKey

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Repeat a create safely: the same key and request give the first answer again.",
    ),
]


def fingerprint(scope: str, body: BaseModel) -> str:
    return hashlib.sha256(f"{scope}\n{body.model_dump_json()}".encode()).hexdigest()


async def replay(
    session: AsyncSession, persona_id: uuid.UUID, key: str | None, print_: str
) -> JSONResponse | None:
    if key is None:
        return None
    stored = await session.get(IdempotencyKey, (persona_id, key))
    if stored is None:
        return None
    if stored.fingerprint != print_:
        raise Unprocessable(
            "This Idempotency-Key was already used for a different request.", slug="idempotency-mismatch"
        )
    content = json.loads(stored.response)
    headers = {"Idempotent-Replayed": "true"}
    if isinstance(content, dict) and "location" in content:
        headers["Location"] = str(content.pop("location"))
    return JSONResponse(content.get("body"), status_code=stored.status_code, headers=headers)


def remember(
    session: AsyncSession,
    persona_id: uuid.UUID,
    key: str | None,
    print_: str,
    status_code: int,
    body: BaseModel,
    location: str,
    resource_id: uuid.UUID,
) -> None:
    if key is None:
        return
    response = json.dumps({"body": body.model_dump(mode="json"), "location": location})
    session.add(
        IdempotencyKey(
            persona_id=persona_id,
            key=key,
            fingerprint=print_,
            resource_id=resource_id,
            status_code=status_code,
            response=response,
        )
    )


async def forget(session: AsyncSession, resource_ids: list[uuid.UUID]) -> None:
    """A deleted post or comment leaves no copy of its text in a stored answer."""
    await session.execute(delete(IdempotencyKey).where(col(IdempotencyKey.resource_id).in_(resource_ids)))


async def replay_after_race(
    session: AsyncSession, persona_id: uuid.UUID, key: str | None, print_: str
) -> JSONResponse:
    """After a failed commit: the concurrent request with the same key won."""
    answer = await replay(session, persona_id, key, print_)
    if answer is None:
        raise Conflict("A request with this Idempotency-Key is still in progress.")
    return answer
