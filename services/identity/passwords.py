"""Argon2 password hashing off the event loop, with a cost taken from settings."""

from __future__ import annotations

import secrets

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

UNUSABLE_PREFIX = "!"


def unusable() -> str:
    """A stored value no password matches, for accounts that sign in only through single
    sign-on (SCIM-provisioned): cheap to make, unlike a hash of a random password."""
    return UNUSABLE_PREFIX + secrets.token_urlsafe(16)


class Passwords:
    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int) -> None:
        self._hash = PasswordHash(
            (Argon2Hasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism),)
        )
        # Verified when the account does not exist, so that the answer takes as long.
        self._dummy = self._hash.hash("not a real password, only spends the same time")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, hashed: str | None) -> bool:
        usable = hashed is not None and not hashed.startswith(UNUSABLE_PREFIX)
        target = hashed if hashed is not None and usable else self._dummy
        ok = await anyio.to_thread.run_sync(self._hash.verify, password, target)
        return bool(ok) and usable
