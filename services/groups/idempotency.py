"""Groups' ``Idempotency-Key`` store (kit.idempotency)."""

from __future__ import annotations

from kit.idempotency import IdempotencyKeyHeader, IdempotencyKeys, fingerprint
from services.groups.models import IdempotencyKey

__all__ = ["IdempotencyKeyHeader", "fingerprint", "remember", "replay", "retention"]

_keys = IdempotencyKeys(IdempotencyKey)
replay = _keys.replay
retention = _keys.retention
remember = _keys.remember
