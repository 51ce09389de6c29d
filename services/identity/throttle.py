"""Sign-in throttling: failures are counted per account name and per client address; past a
threshold the key is locked for a time that doubles with each further failure.

The account key is a hash of the name as typed, whether or not such an account exists, so the
answer (429 with Retry-After, or the usual invalid_grant) and its timing are the same for
existing and unknown accounts.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from kit.addresses import ClientAddress
from kit.timeutil import as_utc, utcnow
from services.identity.models import LoginThrottle
from services.identity.settings import IdentitySettings


def client_address(request: Request, settings: IdentitySettings) -> str:
    """The caller's address: when the direct peer is a trusted proxy (the gateway, which
    appends the address it saw), the nearest untrusted hop of X-Forwarded-For, else the peer."""
    peer = request.client.host if request.client else "unknown"
    return ClientAddress(settings.trusted_proxies)(peer, request.headers.get("x-forwarded-for"))


def keys_for(username: str, address: str) -> list[str]:
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:40]
    return [f"account:{account}", f"address:{address}"]


def _limit(key: str, settings: IdentitySettings) -> int:
    if key.startswith("account:"):
        return settings.login_failures_per_account
    return settings.login_failures_per_address


async def retry_after(session: AsyncSession, keys: list[str]) -> int | None:
    """Seconds until sign-in may be tried again, if any of the keys is locked."""
    now = utcnow()
    waits = []
    for key in keys:
        row = await session.get(LoginThrottle, key)
        if row is not None and row.locked_until is not None and as_utc(row.locked_until) > now:
            waits.append(math.ceil((as_utc(row.locked_until) - now).total_seconds()))
    return max(waits) if waits else None


def _lock_for(failures: int, limit: int, settings: IdentitySettings) -> int:
    excess = failures - limit
    return int(min(settings.login_max_lock_seconds, settings.login_lock_seconds * 2 ** min(excess, 20)))


async def record_failure(session: AsyncSession, keys: list[str], settings: IdentitySettings) -> None:
    now = utcnow()
    for key in keys:
        row = await session.get(LoginThrottle, key)
        if row is None or _expired(row.window_started_at, now, settings):
            if row is None:
                row = LoginThrottle(key=key, window_started_at=now)
                session.add(row)
            row.window_started_at, row.failure_count, row.locked_until = now, 0, None
        row.failure_count += 1
        limit = _limit(key, settings)
        if row.failure_count >= limit:
            row.locked_until = now + timedelta(seconds=_lock_for(row.failure_count, limit, settings))
    await session.commit()


async def record_success(session: AsyncSession, keys: list[str]) -> None:
    """A good sign-in clears the account's count (not the address's: one good password from an
    address that guesses many must not reset its budget)."""
    row = await session.get(LoginThrottle, keys[0])
    if row is not None:
        await session.delete(row)


def _expired(started: datetime, now: datetime, settings: IdentitySettings) -> bool:
    return (now - as_utc(started)).total_seconds() > settings.login_window_seconds
