"""The audit log of administrative actions, of moderation's actions as moderation reports them
(decision 0032), and of what identity resolves for records officers (decision 0033)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.principal import Principal
from kit.errors import Forbidden
from services.identity.models import AuditEntry, Persona

# The actor of a moderation action taken by no one in particular (a limit or a suspension that
# ran out), or whose moderator is not a professional persona here.
MODERATION_ACTOR = "moderation"
# The actor of a records call whose officer is not a professional persona here.
RECORDS_ACTOR = "records"
OPERATOR = "operator"  # the actor of the operator commands (services/identity/manage.py)


def record(
    session: AsyncSession,
    actor: Principal | None,
    action: str,
    *,
    account_id: uuid.UUID | None = None,
    reason: str | None = None,
    **details: Any,
) -> AuditEntry:
    """Adds an entry to the caller's transaction, so it commits with the action itself. The
    actor is a professional persona, a client, or (None) the operator at identity's host
    (services/identity/manage.py): an entry naming a personal persona would tie it to a role,
    and so to its professional twin."""
    if actor is not None and actor.context == "personal":
        raise Forbidden("This operation is for administrators.")
    if actor is None:
        name = OPERATOR
    else:
        name = str(actor.persona_id) if actor.persona_id else f"client:{actor.client_id}"
    entry = AuditEntry(
        actor=name,
        action=action,
        account_id=account_id,
        reason=reason,
        details=details,
    )
    session.add(entry)
    return entry


async def record_moderation(
    session: AsyncSession,
    *,
    moderator_id: uuid.UUID | None,
    group_id: uuid.UUID | None,
    action: str,
    reason: str | None,
    **details: Any,
) -> AuditEntry:
    """Adds the entry of one moderation action to the caller's transaction. Moderation knows no
    account, so the entry names none; its actor is the moderator's professional persona (staff
    act through it only), or ``group:<id>`` when a group's owners or moderators acted (they may
    be personal personas, which the log must not tie to the act). A moderator that is not a
    professional persona here is never written: the entry is then the group's, or moderation's
    own."""
    persona = await session.get(Persona, moderator_id) if moderator_id is not None else None
    if persona is not None and persona.kind == "professional":
        actor = str(persona.id)
    elif group_id is not None:
        actor = f"group:{group_id}"
    else:
        actor = MODERATION_ACTOR
    entry = AuditEntry(actor=actor, action=action, account_id=None, reason=reason, details=details)
    session.add(entry)
    return entry


async def record_officer(
    session: AsyncSession, *, officer_id: uuid.UUID, action: str, reason: str | None, **details: Any
) -> AuditEntry:
    """Adds the entry of something identity did for a records officer to the caller's
    transaction. Records names the officer, who acts through a professional persona (records
    checks it); one that is not a professional persona here is never written, as for
    moderation: the entry is then records' own."""
    persona = await session.get(Persona, officer_id)
    actor = str(persona.id) if persona is not None and persona.kind == "professional" else RECORDS_ACTOR
    entry = AuditEntry(actor=actor, action=action, account_id=None, reason=reason, details=details)
    session.add(entry)
    return entry
