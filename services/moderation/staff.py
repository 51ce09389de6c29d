"""Who may moderate what (decision 0032, "The persona boundary").

Staff are professional personas whose token carries ``moderator`` or ``admin`` and whose row in
``staff_replica`` (from identity's ``internal.staff.updated``) still holds that role: a role
removed at identity is gone here at the first request after its event, whatever the token says.
A personal persona never exercises a role (``Principal.has_role``, decision 0018).

A group's owners and moderators (``group_role_replica``, from groups' ``membership.*``) act on
the posts and comments of their own group, with the actions a group role may take.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from services.moderation.models import GroupRoleReplica, Report, StaffReplica

STAFF_ROLES = ("admin", "moderator")
GROUP_ROLES = ("owner", "moderator")


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A caller acting as staff: the roles both its token and the replica grant."""

    persona_id: uuid.UUID
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


async def staff_member(session: AsyncSession, principal: Principal) -> StaffMember | None:
    """The caller as staff, or None: a professional token with a staff role, held against the
    replica (the token may outlive a role removed since it was issued)."""
    claimed = {role for role in STAFF_ROLES if principal.has_role(role)}
    if not claimed or principal.persona_id is None:
        return None
    row = await session.get(StaffReplica, principal.persona_id)
    held = claimed & set(row.roles) if row is not None else set()
    return StaffMember(principal.persona_id, frozenset(held)) if held else None


async def group_role(session: AsyncSession, group_id: uuid.UUID, persona_id: uuid.UUID) -> str | None:
    """The persona's moderating role in the group (``owner``/``moderator``), or None."""
    role = await session.scalar(
        select(col(GroupRoleReplica.role)).where(
            col(GroupRoleReplica.group_id) == group_id,
            col(GroupRoleReplica.persona_id) == persona_id,
            col(GroupRoleReplica.role).in_(GROUP_ROLES),
        )
    )
    return None if role is None else str(role)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts on a report: staff (``group_id`` None), or an owner or moderator of the group
    whose content it is (``as_role`` 'group')."""

    persona_id: uuid.UUID
    as_role: str
    is_admin: bool = False
    group_id: uuid.UUID | None = None

    @property
    def is_staff(self) -> bool:
        return self.as_role == "staff"


async def concerns(session: AsyncSession, report: Report, persona_id: uuid.UUID) -> bool:
    """Whether the report is about the persona: its own content or self, or a group it owns
    or moderates. Such a report is never shown to it, as staff or as a group's role, since a
    report's review names the reporter, who is never shown to the persona reported."""
    if report.subject_id == persona_id:
        return True
    if report.target_type == "group":
        return await group_role(session, report.target_id, persona_id) is not None
    return False


async def acting_as(session: AsyncSession, principal: Principal, report: Report) -> Actor | None:
    """The caller as it may act on ``report``: as staff on any, else as a role of the report's
    group on that group's reports (never an appeal: appeals are for staff); never on a report
    that concerns it. None for anyone else, who is answered as if the report did not exist."""
    assert principal.persona_id is not None
    if await concerns(session, report, principal.persona_id):
        return None
    member = await staff_member(session, principal)
    if member is not None:
        return Actor(member.persona_id, "staff", is_admin=member.is_admin)
    if report.group_id is None or report.kind == "appeal" or report.context != principal.context:
        return None
    if await group_role(session, report.group_id, principal.persona_id) is None:
        return None
    return Actor(principal.persona_id, "group", group_id=report.group_id)
