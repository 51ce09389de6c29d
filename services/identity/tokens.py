"""Minting access tokens and rotating refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import timedelta

from jose import jwt
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.ids import random_id
from kit.timeutil import as_utc, utcnow
from kit.tokens import ACCESS_TOKEN_TYPE
from services.identity.keys import KeyRing
from services.identity.models import Account, Persona, RefreshToken
from services.identity.settings import IdentitySettings

REFRESH_PREFIX = "rt_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint_access_token(
    keys: KeyRing,
    settings: IdentitySettings,
    *,
    subject: str,
    context: str | None,
    roles: list[str],
    scope: str = "",
    client_id: str | None = None,
    app_id: str | None = None,
) -> str:
    """A signed access token. ``app_id`` names the app a persona's token was granted to
    (claim ``azp``): every service holds such a token to its ``scope`` (domain/principal.py)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_seconds,
        "jti": uuid.uuid4().hex,
        "scope": scope,
        # Roles only through the professional persona: a personal persona seen using one would be
        # one of the few role holders, and so linkable to its professional twin.
        "roles": sorted(roles) if context == "professional" else [],
    }
    if context is not None:
        claims["ctx"] = context
    if client_id is not None:
        claims["client_id"] = client_id
    if app_id is not None:
        claims["azp"] = app_id
    key = keys.active
    return jwt.encode(
        claims,
        key.signer,
        algorithm="RS256",
        headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
    )


async def issue_refresh_token(
    session: AsyncSession,
    settings: IdentitySettings,
    account: Account,
    family_id: uuid.UUID | None = None,
    *,
    app_id: str | None = None,
    persona_id: uuid.UUID | None = None,
    scope: str = "",
) -> str:
    """A new refresh token of ``family_id``, or of a new family. A new family's id is random:
    its owner sees it in ``/me/sessions``, and a time-ordered id would show when it began to
    the minute. An app's family is bound to the app, the persona and the scope granted."""
    token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            digest=digest(token),
            family_id=family_id or random_id(),
            account_id=account.id,
            expires_at=utcnow() + timedelta(seconds=settings.refresh_token_seconds),
            app_id=app_id,
            persona_id=persona_id,
            scope=scope,
        )
    )
    return token


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_app_families(session: AsyncSession, app_id: str) -> None:
    """Revokes every refresh family an app holds (the caller commits)."""
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.app_id) == app_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke(session: AsyncSession, token: str) -> bool:
    """Revokes a refresh token's whole family; returns whether the token was known."""
    row = await session.scalar(select(RefreshToken).where(RefreshToken.digest == digest(token)))
    if row is None:
        return False
    await revoke_family(session, row.family_id)
    await session.commit()
    return True


async def find_refresh_token(session: AsyncSession, token: str) -> RefreshToken | None:
    """The row of a refresh token, used or not, without marking it."""
    row: RefreshToken | None = await session.scalar(
        select(RefreshToken).where(col(RefreshToken.digest) == digest(token))
    )
    return row


async def use_refresh_token(session: AsyncSession, token: str) -> RefreshToken | None:
    """The token's row when it may be used now, marking it used (``consume``)."""
    return await consume(session, await find_refresh_token(session, token))


async def consume(session: AsyncSession, row: RefreshToken | None) -> RefreshToken | None:
    """``row`` when it may be used now, marking it used. A token that was already used revokes
    its family (it was stolen or replayed) and counts as invalid. The update is conditional, so
    of two parallel uses of one token exactly one wins."""
    if row is None:
        return None
    if row.revoked_at is not None or as_utc(row.expires_at) <= utcnow():
        return None
    if row.used_at is not None:
        await revoke_family(session, row.family_id)
        return None
    result = await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.id) == row.id, col(RefreshToken.used_at).is_(None))
        .values(used_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await revoke_family(session, row.family_id)
        return None
    return row


async def persona_of_kind(session: AsyncSession, account_id: uuid.UUID, kind: str) -> Persona | None:
    return await session.scalar(select(Persona).where(Persona.account_id == account_id, Persona.kind == kind))
