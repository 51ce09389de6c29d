"""Who may see and do what in a group: the rules, as plain functions and queries (deps.py
makes the request dependency of them). A group of the other context, or a secret group the
caller neither belongs to nor is invited to, answers exactly as one that does not exist.

So does a group under moderation (decision 0032): a removed one for everyone, a hidden one
for everyone but its owners, who still see it, read-only: any change they ask for is a 409
``group-moderated`` until moderation restores the group."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, or_, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.contexts import Context
from domain.principal import Principal
from kit.errors import Conflict, Forbidden, NotFound, TooManyRequests
from kit.timeutil import utcnow
from services.groups.models import Group, Invitation, JoinRequest, Membership, PersonaReplica

NO_GROUP = "No group with this id."


def group_not_found() -> NotFound:
    return NotFound(NO_GROUP)


def archived_error() -> Conflict:
    return Conflict("The group is archived and read-only; restore it first.", slug="group-archived")


def moderated_error() -> Conflict:
    return Conflict(
        "The group is hidden by moderation and read-only until moderation restores it.",
        slug="group-moderated",
    )


def moderation_allows(role: Any) -> ColumnElement[bool]:
    """Whether moderation lets a caller with ``role`` in the group (a column or subquery,
    NULL for no membership) see it: a group under no moderation, or a hidden one to its
    owners. Every statement that finds groups for a caller adds it."""
    return or_(col(Group.moderation).is_(None), and_(col(Group.moderation) == "hidden", role == "owner"))


@dataclass
class Access:
    """A group the caller may see, with the caller's membership of it (if any)."""

    group: Group
    membership: Membership | None
    caller: Principal

    @property
    def persona_id(self) -> uuid.UUID:
        assert self.caller.persona_id is not None
        return self.caller.persona_id

    @property
    def role(self) -> str | None:
        return self.membership.role if self.membership else None

    @property
    def is_admin(self) -> bool:
        return self.caller.has_role("admin")

    def require(self, *roles: str, admin: bool = False, action: str = "do this") -> None:
        """Raises 403 unless the caller has one of ``roles`` (or is an administrator, when
        ``admin``). The group is visible already, so 403 here leaks nothing."""
        if self.role in roles or (admin and self.is_admin):
            return
        raise Forbidden(
            "Only a group's {roles} may {action}.", params={"roles": " or ".join(roles), "action": action}
        )

    async def relock(self, session: AsyncSession) -> None:
        """Takes the group's lock, then reads the group and the caller's role again: a check
        made before the lock may be stale by the time it is granted."""
        await lock_group(session, self.group)
        self.membership = await membership_of(session, self.group.id, self.persona_id)
        if self.membership is not None:
            await session.refresh(self.membership)

    def require_unmoderated(self) -> None:
        """A hidden group reaches its owners read-only (no one else reaches a moderated group)."""
        if self.group.moderation is not None:
            raise moderated_error()

    def require_writable(self) -> None:
        self.require_unmoderated()
        if self.group.archived_at is not None:
            raise archived_error()

    def require_membership(self, what: str) -> None:
        """Members (and administrators) only, whatever the group's visibility."""
        if self.membership is None and not self.is_admin:
            raise Forbidden("Only members see {what}.", params={"what": what})

    def require_member_view(self) -> None:
        """Members lists, requests and health of closed and secret groups are for members."""
        if self.group.visibility != "open" and self.membership is None and not self.is_admin:
            raise Forbidden("Only members see this.")


async def membership_of(
    session: AsyncSession, group_id: uuid.UUID, persona_id: uuid.UUID
) -> Membership | None:
    return await session.scalar(
        select(Membership).where(
            col(Membership.group_id) == group_id, col(Membership.persona_id) == persona_id
        )
    )


async def visible_group(session: AsyncSession, group_id: uuid.UUID, caller: Principal) -> Access:
    """The group as the caller sees it, with the caller's membership, or 404. One query
    whatever the answer, and the same path to the 404 for a group that does not exist, one of
    the other context, a secret one the caller may not see and one under moderation (but a
    hidden one to its owners): the statement itself leaves out what the caller may not see, so
    all of them come back as no row and neither the answer nor its timing tells them apart.
    The moderation rule holds for administrators too. The membership and a pending invitation
    are read in the same statement as the group, so one consistent snapshot decides."""
    assert caller.persona_id is not None
    visible = (
        true()
        if caller.has_role("admin")
        else or_(
            col(Group.visibility) != "secret",
            col(Membership.persona_id).is_not(None),
            col(Invitation.id).is_not(None),
        )
    )
    row = (
        await session.execute(
            select(Group, Membership)
            .outerjoin(
                Membership,
                (col(Membership.group_id) == col(Group.id))
                & (col(Membership.persona_id) == caller.persona_id),
            )
            .outerjoin(
                Invitation,
                (col(Invitation.group_id) == col(Group.id))
                & (col(Invitation.persona_id) == caller.persona_id)
                & (col(Invitation.status) == "pending"),
            )
            .where(
                col(Group.id) == group_id,
                col(Group.context) == caller.context,
                visible,
                moderation_allows(col(Membership.role)),
            )
            .limit(1)
        )
    ).first()
    if row is None:
        raise group_not_found()
    return Access(row[0], row[1], caller)


async def reader(session: AsyncSession, persona_id: uuid.UUID, *, via: str) -> Principal | None:
    """A persona another service asks about (moderation's reporter, media's reader) as groups'
    rules see a caller, built from the persona replica: an active persona of its context, with
    no role (such a question carries no token, so no administrator's view of secret groups).
    ``via`` names the question where a request has its token id. None for a persona unknown
    here or no longer active."""
    replica = await session.get(PersonaReplica, persona_id)
    if replica is None or replica.status != "active":
        return None
    now = time.time()
    return Principal(
        subject=str(persona_id),
        persona_id=persona_id,
        context=cast(Context, replica.context),
        scopes=frozenset(),
        roles=frozenset(),
        token_id=via,
        issued_at=now,
        expires_at=now,
    )


async def check_join_budget(session: AsyncSession, persona_id: uuid.UUID, per_hour: int) -> None:
    """A business-flow limit: joins and join requests of one persona in the last hour."""
    since = utcnow() - timedelta(hours=1)
    times = [
        *(
            await session.scalars(
                select(Membership.joined_at).where(
                    col(Membership.persona_id) == persona_id, col(Membership.joined_at) > since
                )
            )
        ).all(),
        *(
            await session.scalars(
                select(JoinRequest.created_at).where(
                    col(JoinRequest.persona_id) == persona_id, col(JoinRequest.created_at) > since
                )
            )
        ).all(),
    ]
    if len(times) >= per_hour:
        wait = (min(times) + timedelta(hours=1) - utcnow()).total_seconds()
        raise TooManyRequests("Too many joins in the last hour; try again later.", retry_after=int(wait) + 1)


async def lock_group(session: AsyncSession, group: Group) -> None:
    """Serialises membership changes of one group: a row lock on PostgreSQL, the write lock
    on SQLite. Taken before counting owners, so two concurrent changes cannot both see
    "another owner is left" and leave none."""
    await session.execute(
        update(Group).where(col(Group.id) == group.id).values(member_count=col(Group.member_count))
    )
    await session.refresh(group)
