"""``Idempotency-Key`` on creates: a repeat of the same request by the same persona gets the
first answer again (with ``Idempotent-Replayed: true``); the same key with another request
is a 422. The key is stored in the create's own transaction, so of two concurrent repeats
only one creates; the other replays the winner's answer."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Unprocessable
from services.groups.models import IdempotencyKey

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
    stored = await session.get(IdempotencyKey, (persona_id, key), populate_existing=True)
    if stored is None:
        return None
    if stored.fingerprint != print_:
        raise Unprocessable(
            "This Idempotency-Key was already used for a different request.", slug="idempotency-mismatch"
        )
    content = json.loads(stored.response)
    headers = {"Idempotent-Replayed": "true", "Location": str(content["location"])}
    return JSONResponse(content["body"], status_code=stored.status_code, headers=headers)


def remember(
    session: AsyncSession,
    persona_id: uuid.UUID,
    key: str | None,
    print_: str,
    status_code: int,
    body: BaseModel,
    location: str,
) -> None:
    if key is None:
        return
    response = json.dumps({"body": body.model_dump(mode="json"), "location": location})
    session.add(
        IdempotencyKey(
            persona_id=persona_id, key=key, fingerprint=print_, status_code=status_code, response=response
        )
    )
