"""Groups and the records service (decision 0033). Records keeps a copy of every state a group
had, so every change of a group (its creation, a change of its name, purpose, visibility or
charter, archiving, restoring, moderation and deletion) also publishes
``internal.records.group``, with the group's whole recorded state, in the change's own
transaction: the public ``group.*`` events carry no purpose, and records alone receives this
one.

Records in turn disposes of operational records by age: ``internal.records.dispose`` with the
class ``group_health`` asks groups to delete its activity history (the rows group health is
computed from) older than a cut-off. The rule is housekeeping's own (``health.history_retention``:
same table, same column, and each group's latest item is kept), with records' cut-off."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.outbox import Outbox
from kit.timeutil import as_utc
from services.groups import health
from services.groups.models import Group

GROUP_RECORD = "internal.records.group"
GROUP_HEALTH = "group_health"
"""The class of operational records that groups owns."""
DISPOSAL_BATCH = 1000
"""Activity rows deleted per statement, so that no statement grows with the history."""

Change = Literal["created", "updated", "archived", "restored", "deleted", "moderated"]


def group_record(group: Group, change: Change, at: datetime) -> dict[str, Any]:
    """The data of ``internal.records.group``: the group as records keeps each of its states."""
    return {
        "id": str(group.id),
        "context": group.context,
        "handle": group.handle,
        "name": group.name,
        "purpose": group.purpose,
        "visibility": group.visibility,
        "created_at": as_utc(group.created_at).isoformat(),
        "change": change,
        "at": as_utc(at).isoformat(),
        "deleted": change == "deleted",
    }


async def publish_group(
    session: AsyncSession, outbox: Outbox, group: Group, change: Change, at: datetime | None = None
) -> None:
    """Adds the group's record to the caller's transaction; ``at`` is when the change was
    made, by default the group's ``updated_at`` (which every change but a deletion moves)."""
    when = at if at is not None else group.updated_at
    await outbox.publish(session, GROUP_RECORD, str(group.id), group_record(group, change, when))


async def dispose_of_history(session: AsyncSession, before: datetime, *, batch: int = DISPOSAL_BATCH) -> int:
    """Deletes the activity history from before ``before``, each group's latest item apart,
    ``batch`` rows per statement; returns how many rows went. Running it again deletes
    nothing more. The caller commits (the event receiver does)."""
    rule = health.history_retention()
    table = rule.table
    conditions = [table.c[rule.column] < as_utc(before), rule.condition]
    removed = 0
    while True:
        ids = (await session.scalars(select(table.c.id).where(*conditions).limit(batch))).all()
        if not ids:
            return removed
        # The conditions again on the rows deleted: a group's newer item deleted meanwhile
        # (its post was) leaves the older one its latest, which stays.
        result: Any = await session.execute(delete(table).where(table.c.id.in_(ids), *conditions))
        removed += int(result.rowcount or 0)
        if len(ids) < batch:
            return removed
