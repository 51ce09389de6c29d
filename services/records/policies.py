"""Retention policies (decision 0033, "Classes and policies").

Every class has a policy; a class without a row has the default, ``keep_forever``, so a
deployment disposes of nothing until an officer decides. The set of policies has one version
(``policy_set``): a change names the version it was made from and is refused with 409
``version-conflict`` once another change has moved it. The version moves by a conditional
update (``... WHERE version = :read``), which both databases apply to one writer at a time: of
two changes made from the same version, the second finds it moved.

A policy that would dispose of items an active hold may cover (its cut-off after the start of
such a hold) is refused with 409 ``policy-within-hold`` unless the change acknowledges it: the
hold wins either way, since disposition never touches what a hold covers; the officer has
only been told.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.db import upsert
from kit.errors import Conflict
from kit.timeutil import utcnow
from services.records import audit, holding
from services.records.classes import CLASSES
from services.records.models import Policy, PolicySet
from services.records.officers import Officer
from services.records.schemas import PolicyChange, PolicyIn, PolicyPublic, PolicySetPublic, Rule, RulePublic

DISPOSE = "dispose"


@dataclass(frozen=True, slots=True)
class RuleInForce:
    """One class's rule (or a group's override) as disposition applies it."""

    keep_days: int | None = None
    counted_from: str = "created"
    then: str = "keep_forever"

    def cutoff(self, now: datetime) -> datetime | None:
        """What was created (or last active) before this goes; None when nothing goes."""
        if self.then != DISPOSE or self.keep_days is None:
            return None
        return now - timedelta(days=self.keep_days)

    def public(self) -> dict[str, Any]:
        return {"keep_days": self.keep_days, "counted_from": self.counted_from, "then": self.then}


@dataclass(frozen=True, slots=True)
class PolicyInForce(RuleInForce):
    klass: str = ""
    overrides: dict[uuid.UUID, RuleInForce] = field(default_factory=dict)

    def disposes(self) -> bool:
        return self.then == DISPOSE or any(o.then == DISPOSE for o in self.overrides.values())

    def latest_cutoff(self, now: datetime) -> datetime | None:
        """The latest cut-off of the class or of any group's override."""
        cutoffs = [c for c in (r.cutoff(now) for r in (self, *self.overrides.values())) if c is not None]
        return max(cutoffs, default=None)


async def in_force(session: AsyncSession) -> tuple[int, dict[str, PolicyInForce]]:
    """The set's version and every class's policy (the default for a class without a row)."""
    version, rows = await _load(session)
    return version, {k: _in_force(k, rows.get(k)) for k in CLASSES}


async def _load(session: AsyncSession) -> tuple[int, dict[str, Policy]]:
    version = await session.scalar(select(col(PolicySet.version)).where(col(PolicySet.id) == 1))
    rows = {p.klass: p for p in (await session.scalars(select(Policy))).all()}
    return int(version or 0), rows


async def read(session: AsyncSession, officer: Officer) -> PolicySetPublic:
    """Every class's policy; the read is audited."""
    answer = await _public(session)
    audit.record(session, officer.persona_id, "policies.read")
    await session.commit()
    return answer


async def change(session: AsyncSession, officer: Officer, body: PolicyChange) -> PolicySetPublic:
    """Replaces the policies of the classes named, as one new version of the set, and commits
    with its audit entry. 409 ``version-conflict`` when the set is no longer at
    ``body.version``; 409 ``policy-within-hold`` (unless acknowledged) when a disposing
    policy's cut-off is after the start of an active hold that may cover the class. Nothing is
    written when refused."""
    now = utcnow()
    version = await _next_version(session, body.version)
    within = await _within_holds(session, body, now)
    if within and not body.acknowledge_holds:
        await session.rollback()
        raise Conflict(
            "An active hold starts before the cut-off of {classes}: the hold would keep "
            "what it covers. Send acknowledge_holds to change the policy all the same.",
            params={"classes": ", ".join(within)},
            slug="policy-within-hold",
            extra={"classes": within},
        )
    for policy in body.policies:
        values = {
            "klass": policy.klass,
            "keep_days": policy.keep_days,
            "counted_from": policy.counted_from,
            "then": policy.then,
            "overrides": {str(g): _rule(r).public() for g, r in policy.overrides.items()},
            "version": version,
            "updated_by": officer.persona_id,
            "updated_at": now,
        }
        await upsert(session, Policy, values, ["klass"])
    audit.record(
        session,
        officer.persona_id,
        "policies.changed",
        version=version,
        classes=[p.klass for p in body.policies],
        acknowledged_holds=within,
    )
    await session.commit()
    return await _public(session)


async def _next_version(session: AsyncSession, read_version: int) -> int:
    """Moves the set from ``read_version`` to the next, or refuses: the conditional update is
    also the lock that orders concurrent changes."""
    await upsert(session, PolicySet, {"id": 1, "version": 0}, ["id"], update=False)
    result: Any = await session.execute(
        update(PolicySet)
        .where(col(PolicySet.id) == 1, col(PolicySet.version) == read_version)
        .values(version=read_version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        await session.rollback()
        raise Conflict(
            "The policies changed since this version was read; read them again.", slug="version-conflict"
        )
    return read_version + 1


async def _within_holds(session: AsyncSession, body: PolicyChange, now: datetime) -> list[str]:
    """The classes of the change whose latest cut-off an active hold starts before."""
    within: list[str] = []
    for policy in body.policies:
        latest = _policy(policy).latest_cutoff(now)
        if latest is not None and await holding.reaches_before(session, policy.klass, latest):
            within.append(policy.klass)
    return within


async def _public(session: AsyncSession) -> PolicySetPublic:
    version, rows = await _load(session)
    return PolicySetPublic(
        version=version,
        policies=[_policy_public(_in_force(k, rows.get(k)), rows.get(k)) for k in CLASSES],
    )


def _policy_public(policy: PolicyInForce, row: Policy | None) -> PolicyPublic:
    return PolicyPublic.model_validate(
        {
            "class": policy.klass,
            **policy.public(),
            "overrides": {str(g): RulePublic(**o.public()) for g, o in policy.overrides.items()},
            "updated_at": row.updated_at if row is not None else None,
            "updated_by": row.updated_by if row is not None else None,
        }
    )


def _in_force(klass: str, row: Policy | None) -> PolicyInForce:
    if row is None:
        return PolicyInForce(klass=klass)
    return PolicyInForce(
        keep_days=row.keep_days,
        counted_from=row.counted_from,
        then=row.then,
        klass=klass,
        overrides={uuid.UUID(g): RuleInForce(**o) for g, o in row.overrides.items()},
    )


def _rule(rule: Rule) -> RuleInForce:
    return RuleInForce(keep_days=rule.keep_days, counted_from=rule.counted_from, then=rule.then)


def _policy(policy: PolicyIn) -> PolicyInForce:
    """A requested policy as it would be in force."""
    return PolicyInForce(
        keep_days=policy.keep_days,
        counted_from=policy.counted_from,
        then=policy.then,
        klass=policy.klass,
        overrides={g: _rule(r) for g, r in policy.overrides.items()},
    )
