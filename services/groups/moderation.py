"""Moderation, as groups applies it (decision 0032). Moderation decides in its own service and
tells groups through ``moderation.group.*`` events; groups keeps the decision on the group's
row (``Group.moderation``), and ``access`` makes a moderated group answer as a missing one (a
hidden one still reaches its owners, read-only). Each change is told to the other services
as ``group.updated``, whose ``moderation`` field their replicas follow, and to records as a
``moderated`` state of the group (``records``).

Moderation also asks, once per report on a group, what the reporter can see of it: the lookup
below answers with groups' own rule (``access.visible_group``) for the reporter, so a missing
group, one of the other context, a secret one and a moderated one are the same 404."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.outbox import Outbox
from kit.timeutil import as_utc, utcnow
from services.groups import access, membership, records
from services.groups.access import group_not_found, lock_group, visible_group
from services.groups.models import Group, Membership
from services.groups.schemas import GroupForModeration, group_for_moderation

STATES: dict[str, str | None] = {"hidden": "hidden", "removed": "removed", "restored": None}
"""What each ``moderation.group.<action>`` event leaves in ``Group.moderation``."""

_LOOKUP = "moderation-lookup"  # what a lookup's reader has where a request has its token id


async def apply(
    session: AsyncSession, outbox: Outbox, group_id: uuid.UUID, context: str, state: str | None, at: datetime
) -> bool:
    """Sets the group's moderation to ``state`` as decided at ``at`` (the event's time), and
    publishes ``group.updated`` when that changes it; returns whether it did. A decision
    older than the one applied last was overtaken and changes nothing, so events delivered
    late or twice leave the latest decision in place. A group deleted meanwhile, or of
    another context than the decision's, is left alone. The caller commits (the event
    receiver does)."""
    group = await session.get(Group, group_id)
    if group is None or group.context != context:
        return False
    await lock_group(session, group)  # reads the row again under the lock
    at = as_utc(at)
    if group.moderated_at is not None and as_utc(group.moderated_at) > at:
        return False
    changed = group.moderation != state
    group.moderated_at = at
    if changed:
        group.moderation = state
        group.updated_at = utcnow()  # the replicas order a group's events by it
    session.add(group)
    await session.flush()
    if changed:
        await outbox.publish(session, "group.updated", str(group.id), membership.group_event(group))
        await records.publish_group(session, outbox, group, "moderated")
    return changed


async def lookup(session: AsyncSession, group_id: uuid.UUID, reader_id: uuid.UUID) -> GroupForModeration:
    """The group as moderation keeps it in a report's evidence, if ``reader_id`` may see it;
    else the 404 that a missing group gets."""
    reader = await access.reader(session, reader_id, via=_LOOKUP)
    if reader is None:
        raise group_not_found()
    seen = await visible_group(session, group_id, reader)
    owners = await session.scalars(
        select(Membership.persona_id)
        .where(col(Membership.group_id) == seen.group.id, col(Membership.role) == "owner")
        .order_by(col(Membership.joined_at), col(Membership.id))
    )
    return group_for_moderation(seen.group, list(owners.all()))
