"""Groups' ``Idempotency-Key`` answers (kit.idempotency), kept in groups' own table."""

from __future__ import annotations

from kit.idempotency import IdempotencyKeys
from services.groups.models import IdempotencyKey

keys = IdempotencyKeys(IdempotencyKey, owner_column="persona_id")
