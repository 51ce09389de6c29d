"""Join requests (closed groups) and invitations (any group; the only way into a secret one).
One request and one invitation per persona and group, keyed by the persona's id; a decided one
can be renewed. Approving a request or accepting an invitation makes a member
(services/groups/membership.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.errors import Conflict, Forbidden, NotFound
from kit.ids import new_id
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.groups import membership
from services.groups.access import Access, check_join_budget, membership_of
from services.groups.models import Group, Invitation, JoinRequest, Membership, PersonaReplica

NO_REQUEST = "No join request from this persona."
NO_INVITATION = "No invitation for this persona."


async def _open_or_renew(
    session: AsyncSession, model: Any, group_id: uuid.UUID, persona_id: uuid.UUID, values: dict[str, Any]
) -> tuple[Any, bool]:
    """Creates a pending row, or renews a decided one; a pending one is returned as it is.
    Concurrent calls end with one row (``ON CONFLICT DO NOTHING``)."""
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    table = model.__table__
    inserted = (
        await session.execute(
            dialect.insert(table)
            .values(
                id=new_id(),
                group_id=group_id,
                persona_id=persona_id,
                status="pending",
                created_at=now,
                **values,
            )
            .on_conflict_do_nothing(index_elements=["group_id", "persona_id"])
            .returning(table.c.id)
        )
    ).scalar_one_or_none()
    created = inserted is not None
    if not created:
        renewed = (
            await session.execute(
                update(model)
                .where(
                    col(model.group_id) == group_id,
                    col(model.persona_id) == persona_id,
                    col(model.status) != "pending",
                )
                .values(status="pending", created_at=now, decided_at=None, **values)
                .returning(table.c.id)
            )
        ).scalar_one_or_none()
        created = renewed is not None
    row = await session.scalar(
        select(model)
        .where(col(model.group_id) == group_id, col(model.persona_id) == persona_id)
        .execution_options(populate_existing=True)
    )
    return row, created


async def _decide(
    session: AsyncSession, model: Any, group_id: uuid.UUID, persona_id: uuid.UUID, values: dict[str, Any]
) -> Any:
    """Moves a pending row to its decision, once: of two concurrent decisions one wins and
    the other gets 409."""
    table = model.__table__
    decided = (
        await session.execute(
            update(model)
            .where(
                col(model.group_id) == group_id,
                col(model.persona_id) == persona_id,
                col(model.status) == "pending",
            )
            .values(decided_at=utcnow(), **values)
            .returning(table.c.id)
        )
    ).scalar_one_or_none()
    row = await session.scalar(
        select(model)
        .where(col(model.group_id) == group_id, col(model.persona_id) == persona_id)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound(NO_REQUEST if model is JoinRequest else NO_INVITATION)
    if decided is None:
        raise Conflict(
            "This was decided already: {status}.", params={"status": row.status}, slug="already-decided"
        )
    return row


def require_moderator(access: Access, action: str) -> None:
    """Requests and invitations are handled by the group's owners and moderators (and
    administrators)."""
    access.require("owner", "moderator", admin=True, action=action)


async def request_to_join(
    session: AsyncSession, access: Access, message: str | None, joins_per_hour: int
) -> tuple[JoinRequest, bool]:
    """The caller asks to join a closed group; returns the request and whether it is new (or
    renewed) rather than one pending already."""
    access.require_writable()
    if access.membership is not None:
        raise Conflict("The caller is a member already.", slug="already-member")
    if access.group.visibility != "closed":
        raise Conflict("Only closed groups take join requests; open ones are joined directly.")
    await check_join_budget(session, access.persona_id, joins_per_hour)
    row, created = await _open_or_renew(
        session,
        JoinRequest,
        access.group.id,
        access.persona_id,
        {"message": message, "response": None, "decided_by": None},
    )
    await session.commit()
    return row, created


async def join_requests(
    session: AsyncSession, group: Group, *, status: str, after: uuid.UUID | None, limit: int
) -> Sequence[Row[JoinRequest, PersonaReplica | None]]:
    """A page of the group's requests of one status, oldest first, each with the requester's
    replica (for the group's moderators: ``require_moderator`` first)."""
    query = (
        select(JoinRequest, PersonaReplica)
        .join(PersonaReplica, col(PersonaReplica.id) == JoinRequest.persona_id, isouter=True)
        .where(col(JoinRequest.group_id) == group.id, col(JoinRequest.status) == status)
    )
    if after:
        query = query.where(col(JoinRequest.id) > after)
    return (await session.execute(query.order_by(col(JoinRequest.id)).limit(limit + 1))).all()


async def join_request(
    session: AsyncSession, access: Access, persona_id: uuid.UUID
) -> tuple[JoinRequest, PersonaReplica | None]:
    """One request with its requester's replica; for the requester and the group's moderators."""
    if persona_id != access.persona_id:
        require_moderator(access, "see join requests")
    row = await session.scalar(
        select(JoinRequest).where(
            col(JoinRequest.group_id) == access.group.id, col(JoinRequest.persona_id) == persona_id
        )
    )
    if row is None:
        raise NotFound(NO_REQUEST)
    return row, await session.get(PersonaReplica, persona_id)


async def approve(
    session: AsyncSession, outbox: Outbox, access: Access, persona_id: uuid.UUID, message: str | None
) -> Membership:
    """A moderator approves a request: the requester becomes a member."""
    require_moderator(access, "approve join requests")
    access.require_writable()
    await _decide(
        session,
        JoinRequest,
        access.group.id,
        persona_id,
        {"status": "approved", "response": message, "decided_by": access.persona_id},
    )
    joined, _ = await membership.add(session, outbox, access.group, persona_id)
    await session.commit()
    return joined


async def reject(
    session: AsyncSession, access: Access, persona_id: uuid.UUID, message: str | None
) -> JoinRequest:
    require_moderator(access, "reject join requests")
    access.require_writable()
    row: JoinRequest = await _decide(
        session,
        JoinRequest,
        access.group.id,
        persona_id,
        {"status": "rejected", "response": message, "decided_by": access.persona_id},
    )
    await session.commit()
    return row


async def withdraw(session: AsyncSession, access: Access, persona_id: uuid.UUID) -> None:
    """Only the requester withdraws its own request."""
    if persona_id != access.persona_id:
        raise Forbidden("Only the requester withdraws a join request.")
    access.require_unmoderated()
    await _decide(session, JoinRequest, access.group.id, persona_id, {"status": "cancelled"})
    await session.commit()


async def invite(
    session: AsyncSession, access: Access, persona_id: uuid.UUID, message: str | None
) -> tuple[Invitation, bool]:
    """A moderator invites an active persona of the group's context; returns the invitation and
    whether it is new (or renewed) rather than one pending already."""
    require_moderator(access, "invite")
    access.require_writable()
    invitee = await session.get(PersonaReplica, persona_id)
    if invitee is None or invitee.context != access.group.context or invitee.status != "active":
        raise NotFound("No persona with this id.")
    if await membership_of(session, access.group.id, persona_id) is not None:
        raise Conflict("The persona is a member already.", slug="already-member")
    row, created = await _open_or_renew(
        session,
        Invitation,
        access.group.id,
        persona_id,
        {"message": message, "invited_by": access.persona_id},
    )
    await session.commit()
    return row, created


async def invitations(
    session: AsyncSession, group: Group, *, status: str, after: uuid.UUID | None, limit: int
) -> Sequence[Invitation]:
    """A page of the group's invitations of one status, oldest first (for its moderators:
    ``require_moderator`` first)."""
    query = select(Invitation).where(col(Invitation.group_id) == group.id, col(Invitation.status) == status)
    if after:
        query = query.where(col(Invitation.id) > after)
    return (await session.scalars(query.order_by(col(Invitation.id)).limit(limit + 1))).all()


async def accept(session: AsyncSession, outbox: Outbox, access: Access, persona_id: uuid.UUID) -> Membership:
    """The invitee accepts: it becomes a member."""
    if persona_id != access.persona_id:
        raise Forbidden("Only the invitee accepts an invitation.")
    access.require_writable()
    await _decide(session, Invitation, access.group.id, persona_id, {"status": "accepted"})
    joined, _ = await membership.add(session, outbox, access.group, persona_id)
    await session.commit()
    return joined


async def decline(session: AsyncSession, access: Access, persona_id: uuid.UUID) -> Invitation:
    if persona_id != access.persona_id:
        raise Forbidden("Only the invitee declines an invitation.")
    access.require_unmoderated()
    row: Invitation = await _decide(session, Invitation, access.group.id, persona_id, {"status": "declined"})
    await session.commit()
    return row


async def revoke(session: AsyncSession, access: Access, persona_id: uuid.UUID) -> None:
    """A moderator withdraws a pending invitation."""
    require_moderator(access, "revoke invitations")
    access.require_unmoderated()
    await _decide(session, Invitation, access.group.id, persona_id, {"status": "revoked"})
    await session.commit()
