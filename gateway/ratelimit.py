"""Rate limits per route group, per token subject and per client address.

Each (policy, key) pair has a fixed window that starts with its first request: a counter that
expires after ``window_seconds``. In memory by default; in Redis when configured, where one
Lua script increments and sets the expiry atomically, so that several gateway replicas share
one budget. If Redis does not answer the gateway lets requests through (and logs it) rather
than turning a cache outage into an API outage.

Answers carry the IETF draft's fields (draft-ietf-httpapi-ratelimit-headers)::

    RateLimit-Policy: "default-token";q=600;w=60, "default-address";q=1200;w=60
    RateLimit: "default-token";r=599;t=60, "default-address";r=1199;t=60

and a 429 adds ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.settings import RateLimitRule

log = logging.getLogger("gateway.ratelimit")

Partition = Literal["token", "address"]


class Backend(Protocol):
    async def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Counts one request; returns the count in the current window and the seconds left."""
        ...

    async def aclose(self) -> None: ...


class MemoryBackend:
    """One process's counters; expired ones are dropped as the table grows."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._counters: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        now = time.monotonic()
        count, resets_at = self._counters.get(key, (0, 0.0))
        if resets_at <= now:
            count, resets_at = 0, now + window_seconds
            if len(self._counters) >= self.max_keys:
                self._prune(now)
        count += 1
        self._counters[key] = (count, resets_at)
        return count, resets_at - now

    def _prune(self, now: float) -> None:
        self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        if len(self._counters) >= self.max_keys:  # all live: forget the lot rather than grow
            log.warning("rate-limit table full (%d keys); counters reset", len(self._counters))
            self._counters.clear()

    async def aclose(self) -> None:
        self._counters.clear()


# INCR, and PEXPIRE when the key is new (or lost its expiry): one atomic step.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisBackend:
    def __init__(self, url: str, *, prefix: str, timeout: float = 0.5) -> None:
        self.prefix = prefix
        self.redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False
        )
        self._script = self.redis.register_script(_HIT)

    async def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        count, ttl_ms = await self._script(keys=[self.prefix + key], args=[window_seconds * 1000])
        return int(count), max(0, int(ttl_ms)) / 1000

    async def aclose(self) -> None:
        await self.redis.aclose()


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    limit: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class Decision:
    policy: Policy
    count: int
    reset_seconds: float

    @property
    def allowed(self) -> bool:
        return self.count <= self.policy.limit

    @property
    def remaining(self) -> int:
        return max(0, self.policy.limit - self.count)

    @property
    def reset(self) -> int:
        return max(1, math.ceil(self.reset_seconds))


class RateLimiter:
    def __init__(self, backend: Backend, rules: Mapping[str, RateLimitRule]) -> None:
        self.backend = backend
        self.policies: dict[tuple[str, Partition], Policy] = {}
        for group, rule in rules.items():
            pairs: tuple[tuple[Partition, int | None], ...] = (
                ("token", rule.per_token),
                ("address", rule.per_address),
            )
            for partition, limit in pairs:
                if limit is not None:
                    self.policies[(group, partition)] = Policy(
                        f"{group}-{partition}", limit, rule.window_seconds
                    )

    async def hit(self, group: str, partition: Partition, key: str) -> Decision | None:
        """Counts one request of ``key`` against the group's policy for ``partition``."""
        policy = self.policies.get((group, partition))
        if policy is None:
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no addresses or ids in Redis keys
        try:
            count, reset = await self.backend.hit(f"{policy.name}:{digest}", policy.window_seconds)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("rate-limit backend failed (%s); request let through", type(exc).__name__)
            return None
        return Decision(policy, count, reset)

    async def aclose(self) -> None:
        await self.backend.aclose()


def _item(name: str, params: Iterable[tuple[str, int]]) -> str:
    return f'"{name}"' + "".join(f";{key}={value}" for key, value in params)


def headers(decisions: Sequence[Decision]) -> dict[str, str]:
    if not decisions:
        return {}
    out = {
        "RateLimit-Policy": ", ".join(
            _item(d.policy.name, (("q", d.policy.limit), ("w", d.policy.window_seconds))) for d in decisions
        ),
        "RateLimit": ", ".join(_item(d.policy.name, (("r", d.remaining), ("t", d.reset))) for d in decisions),
    }
    exceeded = [d for d in decisions if not d.allowed]
    if exceeded:
        out["Retry-After"] = str(max(d.reset for d in exceeded))
    return out
