"""The organisation's code of conduct: numbered rules an administrator sets, kept as versions.

Every change adds a version (``conduct_version``) and the highest one is in force; a report
cites rules by number together with the version it read them in, so that a rule renumbered
later still says what the reporter meant. A change names the version it was based on: an
administrator who edited a copy that another one has replaced since gets 409 ``stale-version``
rather than silently undoing the other's change. Two changes racing on the same version both
pass that check, and the primary key lets one of them in.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.errors import Conflict
from kit.text import MultiLineText, SingleLineText
from services.moderation.models import ConductVersion

MAX_RULES = 100
MAX_RULE_NUMBER = 10_000
STALE = "stale-version"

RuleNumber = Annotated[
    int, Field(ge=1, le=MAX_RULE_NUMBER, strict=True, description="How reports and notices cite the rule.")
]
RuleTitle = Annotated[str, Field(min_length=1, max_length=200), SingleLineText]
RuleText = Annotated[str, Field(min_length=1, max_length=4000), MultiLineText]


class ConductRule(BaseModel):
    """One numbered rule of the code of conduct."""

    model_config = ConfigDict(extra="forbid")

    number: RuleNumber
    title: RuleTitle
    text: RuleText


class ConductUpdate(BaseModel):
    """The whole code of conduct as it should read, based on the version the administrator
    edited."""

    model_config = ConfigDict(extra="forbid")

    base_version: int = Field(
        ge=0,
        le=2**31 - 1,
        strict=True,
        description="The version this text was edited from (0 before the first); a code changed "
        "since is refused with 409 `stale-version`.",
    )
    rules: list[ConductRule] = Field(
        max_length=MAX_RULES, description=f"At most {MAX_RULES} rules, each number once."
    )

    @field_validator("rules")
    @classmethod
    def _numbers_once(cls, rules: list[ConductRule]) -> list[ConductRule]:
        numbers = [r.number for r in rules]
        if len(set(numbers)) != len(numbers):
            raise ValueError("each rule number may appear once")
        return rules


class CodeOfConduct(BaseModel):
    """The code of conduct in force."""

    version: int = Field(description="0 until an administrator sets the first one.")
    rules: list[ConductRule] = Field(description="By number.")
    updated_at: datetime | None = Field(description="When this version was set; null for version 0.")


async def _latest(session: AsyncSession) -> ConductVersion | None:
    return await session.scalar(select(ConductVersion).order_by(col(ConductVersion.version).desc()).limit(1))


def _public(row: ConductVersion | None) -> CodeOfConduct:
    if row is None:
        return CodeOfConduct(version=0, rules=[], updated_at=None)
    return CodeOfConduct(
        version=row.version,
        rules=[ConductRule.model_validate(rule) for rule in row.rules],
        updated_at=row.created_at,
    )


async def current(session: AsyncSession) -> tuple[int, list[ConductRule]]:
    """The version in force and its rules, by number: (0, []) before the first."""
    code = _public(await _latest(session))
    return code.version, code.rules


async def rule_numbers(session: AsyncSession) -> tuple[int, frozenset[int]]:
    """The version in force and the numbers a report may cite from it."""
    version, rules = await current(session)
    return version, frozenset(rule.number for rule in rules)


async def read(session: AsyncSession) -> CodeOfConduct:
    """The code of conduct in force (version 0, with no rules, before the first)."""
    return _public(await _latest(session))


async def replace(session: AsyncSession, admin_id: uuid.UUID, body: ConductUpdate) -> CodeOfConduct:
    """Sets a new version holding ``body.rules`` (kept by number) and commits it. 409
    ``stale-version`` when ``body.base_version`` is not the version in force, or another change
    based on it won the race."""
    latest = await session.scalar(select(func.max(col(ConductVersion.version))))
    if body.base_version != (latest or 0):
        raise _stale(latest or 0)
    row = ConductVersion(
        version=body.base_version + 1,
        rules=[rule.model_dump() for rule in sorted(body.rules, key=lambda r: r.number)],
        created_by=admin_id,
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError as exc:  # another change based on the same version was first
        await session.rollback()
        raise _stale(body.base_version + 1) from exc
    return _public(row)


def _stale(version: int) -> Conflict:
    return Conflict(
        "The code of conduct has changed since; version {version} is in force. Start again from it.",
        params={"version": version},
        slug=STALE,
    )
