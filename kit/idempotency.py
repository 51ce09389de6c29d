"""``Idempotency-Key`` on creates: a repeat of the same request by the same owner gets the first
answer again (with ``Idempotent-Replayed: true``); the same key with another request is a 422
(draft-ietf-httpapi-idempotency-key-header).

One call, ``IdempotencyKeys.create``, runs the whole flow: fingerprint the request, replay a
stored answer, else run the create, store its answer in the create's own transaction, commit,
and, when the commit loses a race on the key's primary key, replay the winner's answer. So of
two concurrent repeats only one creates.

Each service keeps the keys in a table of its own database: a model with an owner column (named
by the service, e.g. ``persona_id``) and ``key`` (together the primary key), ``fingerprint``,
``status_code``, ``response`` (JSON: ``{"body": …, "location": …}``) and ``created_at``, plus
any columns of its own that a create fills (``Created.columns``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import APIError, Conflict, Unprocessable
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

AnswerT = TypeVar("AnswerT", bound=BaseModel)


def fingerprint(scope: str, request: BaseModel) -> str:
    """What makes two requests the same: the create they ask for (``scope``) and their body."""
    return hashlib.sha256(f"{scope}\n{request.model_dump_json()}".encode()).hexdigest()


@dataclass(frozen=True)
class Created(Generic[AnswerT]):
    """What a create made: its answer, where the new resource lives, and the values of the key
    table's own columns (e.g. the new resource's id, so that its deletion forgets the answer)."""

    body: AnswerT
    location: str
    status_code: int = 201
    columns: Mapping[str, Any] = field(default_factory=dict)


class Taken(Exception):
    """Raised by a create that finds something it needs already taken (a unique name): as after
    a lost race, the answer is the stored one if a repeat of this request took it, else the
    ``taken`` error given to ``create``."""


IN_PROGRESS = "A request with this Idempotency-Key is still in progress."


class IdempotencyKeys:
    """The stored first answers, in ``model``'s table, whose owner column is ``owner_column``."""

    def __init__(self, model: Any, *, owner_column: str) -> None:
        self.model = model
        self.owner_column = owner_column

    def retention(self, keep: timedelta) -> Retention:
        """Answers are replayed for ``keep``, then forgotten (kit.housekeeping)."""
        return Retention("idempotency keys", self.model.__table__, "created_at", keep)

    async def create(
        self,
        session: AsyncSession,
        response: Response,
        *,
        owner: uuid.UUID,
        key: str | None,
        scope: str,
        request: BaseModel,
        make: Callable[[], Awaitable[Created[AnswerT]]],
        taken: APIError | None = None,
    ) -> AnswerT | JSONResponse:
        """The answer to a create: replayed, or ``make``'s, committed with ``session``.

        ``make`` does the work in ``session`` without committing. When the commit (or ``make``)
        fails on a unique key, or ``make`` raises ``Taken``, the answer is the stored one of a
        concurrent repeat, else ``taken`` (by default a 409: the repeat is still running)."""
        # Without a key nothing is replayed or kept, so the body is not hashed either.
        request_print = fingerprint(scope, request) if key is not None else ""
        replayed = await self._replay(session, owner, key, request_print)
        if replayed is not None:
            return replayed
        try:
            created = await make()
            self._remember(session, owner, key, request_print, created)
            await session.commit()
        except (IntegrityError, Taken):
            await session.rollback()
            replayed = await self._replay(session, owner, key, request_print)
            if replayed is None:
                raise (taken or Conflict(IN_PROGRESS)) from None
            return replayed
        response.status_code = created.status_code
        response.headers["Location"] = created.location
        return created.body

    async def _replay(
        self, session: AsyncSession, owner: uuid.UUID, key: str | None, request_print: str
    ) -> JSONResponse | None:
        if key is None:
            return None
        identity = {self.owner_column: owner, "key": key}
        stored = await session.get(self.model, identity, populate_existing=True)
        if stored is None:
            return None
        if stored.fingerprint != request_print:
            raise Unprocessable(
                "This Idempotency-Key was already used for a different request.", slug="idempotency-mismatch"
            )
        content = json.loads(stored.response)
        headers = {"Idempotent-Replayed": "true"}
        if isinstance(content, dict) and "location" in content:
            headers["Location"] = str(content.pop("location"))
        return JSONResponse(content.get("body"), status_code=stored.status_code, headers=headers)

    def _remember(
        self,
        session: AsyncSession,
        owner: uuid.UUID,
        key: str | None,
        request_print: str,
        created: Created[Any],
    ) -> None:
        """Adds the answer to the create's transaction."""
        if key is None:
            return
        response = json.dumps({"body": created.body.model_dump(mode="json"), "location": created.location})
        row = {self.owner_column: owner, **created.columns}
        session.add(
            self.model(
                key=key,
                fingerprint=request_print,
                status_code=created.status_code,
                response=response,
                **row,
            )
        )
