"""Integrator clients: a client's access token is honoured only while the client is not
revoked, checked on every request (revocation takes effect at once, not when tokens expire)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.principal import Principal
from services.identity.models import Client


async def is_active(session: AsyncSession, principal: Principal) -> bool:
    """Whether ``principal`` is a client's token whose client still exists and is not revoked."""
    if principal.client_id is None:
        return False
    client = await session.get(Client, principal.client_id)
    return client is not None and client.revoked_at is None
