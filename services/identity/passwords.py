"""Argon2 password hashing off the event loop, with a cost taken from settings."""

from __future__ import annotations

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


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
        target = hashed or self._dummy
        ok = await anyio.to_thread.run_sync(self._hash.verify, password, target)
        return bool(ok) and hashed is not None
