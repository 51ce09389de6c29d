"""Checking an email and password, for the token endpoint's password grant and for the sign-in
page alike (decision 0035): the same throttling (services/identity/throttle.py, decision 0019),
the same timing whether or not the account exists, the same refusal for a wrong password, an
unknown address or an account that is not active, so neither door opens a way around the
other's lockout or tells who has an account."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.identity import throttle
from services.identity.models import Account
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings


class Refused(Exception):
    """The credentials are not accepted; ``retry_after`` (seconds) when the attempt was not even
    checked because a lock holds."""

    def __init__(self, retry_after: int | None = None) -> None:
        super().__init__("credentials refused")
        self.retry_after = retry_after


async def authenticate(
    session: AsyncSession,
    settings: IdentitySettings,
    passwords: Passwords,
    *,
    address: str,
    username: str,
    password: str,
) -> Account:
    """The active account of ``username`` and ``password`` tried from the client ``address``;
    failures count towards the locks. Raises ``Refused``."""
    keys = throttle.keys_for(username, address)
    wait = await throttle.retry_after(session, keys)
    if wait is not None:
        raise Refused(retry_after=wait)
    account: Account | None = await session.scalar(
        select(Account).where(col(Account.email) == username.strip().lower())
    )
    ok = await passwords.verify(password, account.password_hash if account else None)
    if not ok or account is None or account.status != "active":
        await throttle.record_failure(session, keys, settings)
        raise Refused()
    if await throttle.account_locked(session, keys):
        raise Refused()  # a distributed attack locked the account: say nothing more
    await throttle.record_success(session, keys)
    return account
