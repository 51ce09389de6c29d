"""The records audit log (decision 0033): every call to ``/api/v1/records/``, reads and
downloads included, with the officer and the matter, and what disposition did. An entry is
added in the transaction of what it records; a read writes its entry and commits it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.records.models import AuditEntry


def record(
    session: AsyncSession,
    officer_id: uuid.UUID | None,
    action: str,
    *,
    matter_id: uuid.UUID | None = None,
    **details: Any,
) -> AuditEntry:
    """Adds one entry to the caller's transaction; ``details`` must be JSON (ids as strings)."""
    entry = AuditEntry(officer_id=officer_id, action=action, matter_id=matter_id, details=details)
    session.add(entry)
    return entry


async def find(
    session: AsyncSession,
    *,
    matter_id: uuid.UUID | None,
    action: str | None,
    before: uuid.UUID | None,
    limit: int,
) -> list[AuditEntry]:
    """Up to ``limit + 1`` entries, newest first (ids are time-ordered)."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit + 1)
    if matter_id is not None:
        query = query.where(col(AuditEntry.matter_id) == matter_id)
    if action is not None:
        query = query.where(col(AuditEntry.action) == action)
    if before is not None:
        query = query.where(col(AuditEntry.id) < before)
    return list((await session.scalars(query)).all())


async def read(
    session: AsyncSession,
    officer_id: uuid.UUID,
    *,
    matter_id: uuid.UUID | None,
    action: str | None,
    before: uuid.UUID | None,
    limit: int,
) -> list[AuditEntry]:
    """A page of the log for an officer; the read is itself an entry (after the page)."""
    rows = await find(session, matter_id=matter_id, action=action, before=before, limit=limit)
    record(session, officer_id, "audit.read", matter_id=matter_id, filter_action=action)
    await session.commit()
    return rows
