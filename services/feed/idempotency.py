"""Feed's ``Idempotency-Key`` answers (kit.idempotency), which a deletion of the post or comment
they created forgets."""

from __future__ import annotations

import uuid

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.idempotency import IdempotencyKeys
from services.feed.models import IdempotencyKey

keys = IdempotencyKeys(IdempotencyKey, owner_column="persona_id")


async def forget(session: AsyncSession, resource_ids: list[uuid.UUID]) -> None:
    """A deleted post or comment leaves no copy of its text in a stored answer."""
    await session.execute(delete(IdempotencyKey).where(col(IdempotencyKey.resource_id).in_(resource_ids)))
