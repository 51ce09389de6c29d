"""Who may use the records API (decision 0033): a professional token with ``records`` or
``admin`` whose persona still holds that role in ``staff_replica`` (from identity's
``internal.staff.updated``): a role removed at identity is gone here at the first request after
its event, whatever the token says. A personal persona never exercises a role (decision 0018)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from domain.principal import Principal
from services.records.models import StaffReplica

OFFICER_ROLES = ("admin", "records")


@dataclass(frozen=True, slots=True)
class Officer:
    """A caller acting as a records officer: the roles both its token and the replica grant."""

    persona_id: uuid.UUID
    roles: frozenset[str]


async def officer(session: AsyncSession, principal: Principal) -> Officer | None:
    claimed = {role for role in OFFICER_ROLES if principal.has_role(role)}
    if not claimed or principal.persona_id is None:
        return None
    row = await session.get(StaffReplica, principal.persona_id)
    held = claimed & set(row.roles) if row is not None else set()
    return Officer(principal.persona_id, frozenset(held)) if held else None
