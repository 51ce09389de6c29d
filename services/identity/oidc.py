"""Trusting an external OpenID Connect provider (the organisation's single sign-on): its ID
tokens, verified against its published keys, are exchanged for our own tokens."""

from __future__ import annotations

from typing import Any

from jose import jwt
from jose.exceptions import JOSEError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.tokens import JWKSKeySource
from services.identity import verification
from services.identity.models import Account
from services.identity.settings import IdentitySettings


class ExternalTokenError(Exception):
    pass


class ExternalProvider:
    def __init__(self, settings: IdentitySettings, keys: JWKSKeySource) -> None:
        assert settings.oidc_issuer and settings.oidc_audience
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.algorithms = settings.oidc_algorithms
        self.claim = settings.oidc_link_claim
        self.leeway = settings.token_leeway_seconds
        self.keys = keys

    async def verify(self, id_token: str) -> str:
        """The value of the linking claim of a valid ID token."""
        if len(id_token) > 16384 or id_token.count(".") != 2:
            raise ExternalTokenError("malformed")
        try:
            header = jwt.get_unverified_header(id_token)
            kid = header.get("kid")
            if header.get("alg") not in self.algorithms or not isinstance(kid, str):
                raise ExternalTokenError("algorithm or key not accepted")
            key = await self.keys.key_for(kid)
            if key is None:
                raise ExternalTokenError("unknown key")
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                    "require_aud": True,
                    "require_iss": True,
                    "leeway": self.leeway,
                    "verify_at_hash": False,
                },
            )
        except ExternalTokenError:
            raise
        except (JOSEError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ExternalTokenError("invalid") from exc
        value = claims.get(self.claim)
        if not isinstance(value, str) or not value:
            raise ExternalTokenError("no linking claim")
        if self.claim == "email" and claims.get("email_verified") is False:
            raise ExternalTokenError("email not verified")
        return value


async def adopt(session: AsyncSession, account: Account) -> None:
    """Signing in through single sign-on takes the account over: a password that whoever
    registered the address set before anyone proved it (and the tokens it got) stops working."""
    await verification.drop_unproved_credentials(session, account)
