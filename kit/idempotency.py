"""``Idempotency-Key`` on creates: a repeat of the same request by the same persona gets the
first answer again (with ``Idempotent-Replayed: true``); the same key with another request is a
422 (draft-ietf-httpapi-idempotency-key-header).

The key is stored in the create's own transaction, so of two concurrent repeats only one
creates: the other's commit fails on the key's primary key and it replays the winner's answer.
Each service keeps the keys in a table of its own database: a model with ``persona_id`` and
``key`` (the primary key), ``fingerprint``, ``status_code``, ``response`` and ``created_at``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Conflict, Unprocessable
from kit.housekeeping import Retention

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


class IdempotencyKeys:
    """The stored first answers, in ``model``'s table."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def retention(self, keep: timedelta) -> Retention:
        """Answers are replayed for ``keep``, then forgotten (kit.housekeeping)."""
        return Retention("idempotency keys", self.model.__table__, "created_at", keep)

    async def replay(
        self, session: AsyncSession, persona_id: uuid.UUID, key: str | None, print_: str
    ) -> JSONResponse | None:
        if key is None:
            return None
        stored = await session.get(self.model, (persona_id, key), populate_existing=True)
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
        self,
        session: AsyncSession,
        persona_id: uuid.UUID,
        key: str | None,
        print_: str,
        status_code: int,
        body: BaseModel,
        location: str,
        **extra: Any,
    ) -> None:
        """Adds the answer to the create's transaction; ``extra`` fills the model's own columns."""
        if key is None:
            return
        response = json.dumps({"body": body.model_dump(mode="json"), "location": location})
        session.add(
            self.model(
                persona_id=persona_id,
                key=key,
                fingerprint=print_,
                status_code=status_code,
                response=response,
                **extra,
            )
        )

    async def replay_after_race(
        self, session: AsyncSession, persona_id: uuid.UUID, key: str | None, print_: str
    ) -> JSONResponse:
        """After a failed commit: the concurrent request with the same key won."""
        answer = await self.replay(session, persona_id, key, print_)
        if answer is None:
            raise Conflict("A request with this Idempotency-Key is still in progress.")
        return answer
