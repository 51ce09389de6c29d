"""Sign-in throttling, in three counters of failures, each with a lock that doubles with each
further failure past its threshold:

    pair      one account name from one client address    locks that pair: 429, Retry-After
    address   any account names from one client address   locks that address: 429, Retry-After
    account   one account name from any addresses         locks the account: a wrong password

So whoever knows an email cannot lock its owner out from another address; only a distributed
attack (many addresses failing on one account) locks the account itself, and then every attempt
gets the answer of a wrong password, so the attacker learns nothing, not even that it locked.

The account key is a hash of the name as typed, whether or not such an account exists, so the
answers and their timing are the same for existing and unknown accounts.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from kit.addresses import CLIENT_ADDRESS_HEADER, ClientAddress, verified_client_address
from kit.timeutil import as_utc, utcnow
from services.identity.models import LoginThrottle
from services.identity.settings import IdentitySettings


def client_address(request: Request, settings: IdentitySettings) -> str:
    """The caller's address. With a shared secret, only the gateway's signed X-Client-Address
    names it (else the peer); without one, the entry the gateway wrote in X-Forwarded-For when
    the peer is a trusted proxy (one entry: the gateway writes only the address it resolved)."""
    peer = request.client.host if request.client else "unknown"
    if settings.client_address_secret is not None:
        signed = verified_client_address(
            settings.client_address_secret.get_secret_value(),
            request.headers.get(CLIENT_ADDRESS_HEADER),
            time.time(),
        )
        return signed or peer
    return ClientAddress(settings.trusted_proxies, hops=1)(peer, request.headers.get("x-forwarded-for"))


@dataclass(frozen=True, slots=True)
class Keys:
    pair: str
    address: str
    account: str

    @property
    def locking(self) -> list[str]:
        """The keys whose lock is answered with 429."""
        return [self.pair, self.address]


def keys_for(username: str, address: str) -> Keys:
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:40]
    pair = hashlib.sha256(f"{account}|{address}".encode()).hexdigest()[:40]
    return Keys(pair=f"pair:{pair}", address=f"address:{address}", account=f"account:{account}")


def _limit(key: str, settings: IdentitySettings) -> int:
    if key.startswith("pair:"):
        return settings.login_failures_per_account
    if key.startswith("account:"):
        return settings.login_failures_per_account_all_addresses
    return settings.login_failures_per_address


def _locked_for(row: LoginThrottle | None, now: datetime) -> float | None:
    if row is None or row.locked_until is None or as_utc(row.locked_until) <= now:
        return None
    return (as_utc(row.locked_until) - now).total_seconds()


async def retry_after(session: AsyncSession, keys: Keys) -> int | None:
    """Seconds until sign-in may be tried again, if the pair or the address is locked."""
    now = utcnow()
    waits = [await session.get(LoginThrottle, key) for key in keys.locking]
    seconds = [s for s in (_locked_for(row, now) for row in waits) if s is not None]
    return math.ceil(max(seconds)) if seconds else None


async def account_locked(session: AsyncSession, keys: Keys) -> bool:
    return _locked_for(await session.get(LoginThrottle, keys.account), utcnow()) is not None


def _lock_for(failures: int, limit: int, settings: IdentitySettings) -> int:
    excess = failures - limit
    return int(min(settings.login_max_lock_seconds, settings.login_lock_seconds * 2 ** min(excess, 20)))


async def record_failure(session: AsyncSession, keys: Keys, settings: IdentitySettings) -> None:
    now = utcnow()
    for key in (keys.pair, keys.address, keys.account):
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


async def record_success(session: AsyncSession, keys: Keys) -> None:
    """A good sign-in clears its pair's count only: not the address's (one good password from an
    address that guesses many must not reset its budget), nor the account's (the owner signing
    in must not give a distributed attack a fresh budget)."""
    row = await session.get(LoginThrottle, keys.pair)
    if row is not None:
        await session.delete(row)


def _expired(started: datetime, now: datetime, settings: IdentitySettings) -> bool:
    return (now - as_utc(started)).total_seconds() > settings.login_window_seconds
