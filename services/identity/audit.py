"""The audit log of administrative actions."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.principal import Principal
from kit.errors import Forbidden
from services.identity.models import AuditEntry


def record(
    session: AsyncSession,
    actor: Principal,
    action: str,
    *,
    account_id: uuid.UUID | None = None,
    reason: str | None = None,
    **details: Any,
) -> AuditEntry:
    """Adds an entry to the caller's transaction, so it commits with the action itself. The
    actor is a professional persona or a client: an entry naming a personal persona would tie
    it to a role, and so to its professional twin."""
    if actor.context == "personal":
        raise Forbidden("This operation is for administrators.")
    entry = AuditEntry(
        actor=str(actor.persona_id) if actor.persona_id else f"client:{actor.client_id}",
        action=action,
        account_id=account_id,
        reason=reason,
        details=details,
    )
    session.add(entry)
    return entry
