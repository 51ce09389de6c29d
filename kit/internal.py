"""The check on calls between services: ``Authorization: Bearer <internal token>``, the secret
every service of one deployment shares (decision 0003). The event receiver uses it, and so do
the few synchronous internal routes (moderation's lookups at filing, decision 0032)."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request

from kit.errors import Unauthorized


async def require_service_token(request: Request) -> None:
    """Refuses (401) a request that does not carry the deployment's internal token. The
    comparison takes the same time whatever the token."""
    expected: str = request.app.state.settings.internal_token.get_secret_value()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("A service token is required.")


ServiceToken = Depends(require_service_token)
"""For a route's or router's ``dependencies=[ServiceToken]``."""
