"""Trusting an external OpenID Connect provider (the organisation's single sign-on): its ID
tokens, verified against its published keys, are exchanged for our own tokens (the token
endpoint's exchange grant), or sign a browser in at the authorization endpoint (its code flow,
services/identity/signin.py)."""

from __future__ import annotations

import hmac
import json
from typing import Any

import httpx
from jose import jwt
from jose.exceptions import JOSEError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.timeutil import utcnow
from kit.tokens import JWKSKeySource
from services.identity import verification
from services.identity.models import Account, SignInSession
from services.identity.settings import IdentitySettings

TOKEN_TIMEOUT_SECONDS = 10.0
TOKEN_ANSWER_LIMIT = 64 * 1024
"""The most of the provider's token answer read: an ID token is a few kilobytes."""


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
        self.authorization_url = settings.oidc_authorization_url
        self.token_url = settings.oidc_token_url
        self.client_secret = settings.oidc_client_secret

    @property
    def code_flow(self) -> bool:
        """Whether a browser can be sent to the provider to sign in (its authorization and token
        endpoints and our secret there are configured), not only its ID tokens exchanged."""
        return bool(self.authorization_url and self.token_url and self.client_secret)

    async def redeem(self, *, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token the provider's token endpoint gives for an authorization ``code`` it
        sent back to ``redirect_uri`` (client_secret_post, PKCE ``verifier``)."""
        if not self.code_flow:
            raise ExternalTokenError("no code flow configured")
        assert self.token_url and self.client_secret
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.audience,
            "client_secret": self.client_secret.get_secret_value(),
            "code_verifier": verifier,
        }
        try:
            if self.keys.client is not None:
                answer = await _post(self.keys.client, self.token_url, form)
            else:
                async with httpx.AsyncClient() as client:
                    answer = await _post(client, self.token_url, form)
        except httpx.HTTPError as exc:
            raise ExternalTokenError(f"token endpoint: {type(exc).__name__}") from exc
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise ExternalTokenError("no id_token in the token endpoint's answer")
        return id_token

    async def verify(self, id_token: str, *, nonce: str | None = None) -> str:
        """The value of the linking claim of a valid ID token; with ``nonce``, one that carries
        exactly that nonce (the browser's code flow: a token minted for another sign-in, or
        replayed, does not match)."""
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
        if nonce is not None:
            sent = claims.get("nonce")
            if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
                raise ExternalTokenError("nonce does not match")
        value = claims.get(self.claim)
        if not isinstance(value, str) or not value:
            raise ExternalTokenError("no linking claim")
        if self.claim == "email" and claims.get("email_verified") is False:
            raise ExternalTokenError("email not verified")
        return value


async def _post(client: httpx.AsyncClient, url: str, form: dict[str, str]) -> dict[str, Any]:
    """The provider's JSON answer to ``form``, read up to TOKEN_ANSWER_LIMIT bytes; an error
    status or anything but a JSON object raises."""
    async with client.stream(
        "POST", url, data=form, headers={"Accept": "application/json"}, timeout=TOKEN_TIMEOUT_SECONDS
    ) as resp:
        body = b""
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > TOKEN_ANSWER_LIMIT:
                raise ExternalTokenError("token endpoint's answer too large")
    if resp.status_code != 200:
        raise ExternalTokenError(f"token endpoint answered {resp.status_code}")
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise ExternalTokenError("token endpoint's answer is not JSON") from exc
    if not isinstance(answer, dict):
        raise ExternalTokenError("token endpoint's answer is not an object")
    return answer


async def linked_account(session: AsyncSession, settings: IdentitySettings, value: str) -> Account | None:
    """The account the linking claim's ``value`` names: by its email (compared as stored,
    lower case) or by its HR external id. Its status is the caller's to check."""
    if settings.oidc_link_claim == "email":
        query = select(Account).where(col(Account.email) == value.strip().lower())
    else:
        query = select(Account).where(col(Account.external_id) == value)
    account: Account | None = await session.scalar(query)
    return account


async def adopt(session: AsyncSession, account: Account) -> None:
    """Signing in through single sign-on takes the account over: a password that whoever
    registered the address set before anyone proved it (and the tokens and browser sign-ins it
    got) stops working."""
    if await verification.drop_unproved_credentials(session, account):
        await session.execute(
            update(SignInSession)
            .where(col(SignInSession.account_id) == account.id, col(SignInSession.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )
