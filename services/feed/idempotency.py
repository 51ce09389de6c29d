"""Feed's ``Idempotency-Key`` store (kit.idempotency), which also forgets the answers of
deleted posts and comments."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.idempotency import IdempotencyKeyHeader, IdempotencyKeys, fingerprint
from services.feed.models import IdempotencyKey

__all__ = [
    "IdempotencyKeyHeader",
    "fingerprint",
    "forget",
    "remember",
    "replay",
    "replay_after_race",
    "retention",
]

_keys = IdempotencyKeys(IdempotencyKey)
replay = _keys.replay
retention = _keys.retention
replay_after_race = _keys.replay_after_race


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
    _keys.remember(session, persona_id, key, print_, status_code, body, location, resource_id=resource_id)


async def forget(session: AsyncSession, resource_ids: list[uuid.UUID]) -> None:
    """A deleted post or comment leaves no copy of its text in a stored answer."""
    await session.execute(delete(IdempotencyKey).where(col(IdempotencyKey.resource_id).in_(resource_ids)))
