"""Matters and their legal holds (decision 0033, "Holds").

A matter is opened with a unique reference and closed once none of its holds is active; a
closed matter takes no more writes (409 ``matter-closed``). A hold names custodians (accounts,
which identity resolves to their personas, auditing the resolution on its side), groups, a date
range and optional terms; what it covers is ``holding``'s one condition. Two active holds of one
matter that share a custodian or a group over overlapping ranges are refused (409
``overlapping-hold``): the second adds nothing but confusion about which to release.

Every write locks the matter's row first (a no-op update, which also starts SQLite's write
transaction), so that a hold is not placed on a matter being closed and two overlapping holds
are not placed at once. Identity is asked before that lock is taken, never while it is held.
Every flow, reads included, writes its audit entry in its own transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.errors import Conflict, NotFound, Unprocessable
from kit.timeutil import utcnow
from services.records import audit, holding
from services.records.custodians import Custodian, Identity
from services.records.models import Hold, HoldGroup, HoldPersona, HoldTerm, Matter
from services.records.officers import Officer
from services.records.schemas import HoldCreate, MatterCreate

OPEN, CLOSED = "open", "closed"
ACTIVE, RELEASED = holding.ACTIVE, "released"

HeldView = tuple[Hold, list[HoldPersona]]


async def get_matter(session: AsyncSession, matter_id: uuid.UUID) -> Matter:
    """The matter, or 404."""
    matter = await session.get(Matter, matter_id)
    if matter is None:
        raise NotFound("No such matter.")
    return matter


def check_open(matter: Matter) -> None:
    """409 ``matter-closed`` for a closed matter: it takes no more writes."""
    if matter.status != OPEN:
        raise Conflict("The matter is closed.", slug="matter-closed")


async def lock_matter(session: AsyncSession, matter_id: uuid.UUID) -> Matter:
    """The matter, its row locked until the transaction ends; 404 when there is none."""
    result = await session.execute(
        update(Matter)
        .where(col(Matter.id) == matter_id)
        .values(status=Matter.status)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("No such matter.")
    matter = await session.get(Matter, matter_id, populate_existing=True)
    assert matter is not None
    return matter


async def create(session: AsyncSession, officer: Officer, body: MatterCreate) -> Matter:
    """Opens a matter and commits; 409 ``duplicate-reference`` for a reference in use."""
    taken = exists().where(col(Matter.reference) == body.reference)
    if await session.scalar(select(taken)):
        raise _duplicate()
    matter = Matter(
        name=body.name, reference=body.reference, reason=body.reason, created_by=officer.persona_id
    )
    session.add(matter)
    audit.record(session, officer.persona_id, "matter.created", matter_id=matter.id, reference=body.reference)
    try:
        await session.commit()
    except IntegrityError as exc:  # the same reference, created at the same moment
        await session.rollback()
        raise _duplicate() from exc
    return matter


def _duplicate() -> Conflict:
    return Conflict("Another matter has this reference.", slug="duplicate-reference")


async def read(session: AsyncSession, officer: Officer, matter_id: uuid.UUID) -> Matter:
    matter = await get_matter(session, matter_id)
    audit.record(session, officer.persona_id, "matter.read", matter_id=matter.id)
    await session.commit()
    return matter


async def find(
    session: AsyncSession, officer: Officer, *, status: str | None, before: uuid.UUID | None, limit: int
) -> list[Matter]:
    """Up to ``limit + 1`` matters, newest first (ids are time-ordered); the read is audited."""
    query = select(Matter).order_by(col(Matter.id).desc()).limit(limit + 1)
    if status is not None:
        query = query.where(col(Matter.status) == status)
    if before is not None:
        query = query.where(col(Matter.id) < before)
    rows = list((await session.scalars(query)).all())
    audit.record(session, officer.persona_id, "matters.listed", status=status)
    await session.commit()
    return rows


async def close(session: AsyncSession, officer: Officer, matter_id: uuid.UUID, reason: str) -> Matter:
    """Closes the matter and commits; 409 ``active-holds`` while any of its holds is active."""
    matter = await lock_matter(session, matter_id)
    check_open(matter)
    active = exists().where(col(Hold.matter_id) == matter.id, col(Hold.status) == ACTIVE)
    if await session.scalar(select(active)):
        await session.rollback()
        raise Conflict("Release the matter's active holds first.", slug="active-holds")
    matter.status, matter.closed_at = CLOSED, utcnow()
    matter.closed_by, matter.close_reason = officer.persona_id, reason
    audit.record(session, officer.persona_id, "matter.closed", matter_id=matter.id, reason=reason)
    await session.commit()
    return matter


async def place_hold(
    session: AsyncSession, identity: Identity, officer: Officer, matter_id: uuid.UUID, body: HoldCreate
) -> HeldView:
    """Places a hold and commits, with its resolved personas, groups and terms. 422
    ``empty-scope`` without custodians or groups; 422 ``unknown-custodian`` for an account
    identity does not know; 409 ``matter-closed``, ``overlapping-hold``."""
    if not body.custodians and not body.group_ids:
        raise Unprocessable("A hold names custodians, groups or both.", slug="empty-scope")
    matter = await get_matter(session, matter_id)
    check_open(matter)
    await _check_no_overlap(session, matter.id, body)
    reason = matter.reason
    await session.rollback()  # no transaction stays open while identity answers
    custodians = await _resolve(identity, officer, matter_id, body.custodians, reason)
    await holding.serialise(session)
    matter = await lock_matter(session, matter_id)
    check_open(matter)
    await _check_no_overlap(session, matter.id, body)
    hold = _hold(matter.id, officer, body)
    session.add(hold)
    personas = [
        HoldPersona(hold_id=hold.id, persona_id=p.id, account_id=c.account_id, context=p.context)
        for c in custodians
        for p in c.personas
    ]
    session.add_all(personas)
    session.add_all([HoldGroup(hold_id=hold.id, group_id=g) for g in body.group_ids])
    patterns = dict.fromkeys(holding.pattern(t) for t in body.terms)
    session.add_all([HoldTerm(hold_id=hold.id, pattern=p) for p in patterns])
    audit.record(
        session,
        officer.persona_id,
        "hold.placed",
        matter_id=matter.id,
        hold_id=str(hold.id),
        custodians=hold.custodians,
        group_ids=hold.group_ids,
        date_from=body.date_from.isoformat(),
        date_to=body.date_to.isoformat() if body.date_to else None,
        terms=len(body.terms),
    )
    await session.commit()
    return hold, personas


def _hold(matter_id: uuid.UUID, officer: Officer, body: HoldCreate) -> Hold:
    return Hold(
        matter_id=matter_id,
        custodians=[str(c) for c in body.custodians],
        group_ids=[str(g) for g in body.group_ids],
        date_from=body.date_from,
        date_to=body.date_to,
        terms=list(body.terms),
        created_by=officer.persona_id,
    )


async def _resolve(
    identity: Identity, officer: Officer, matter_id: uuid.UUID, accounts: list[uuid.UUID], reason: str
) -> list[Custodian]:
    if not accounts:
        return []
    return await identity.custodians(
        accounts, matter_id=matter_id, officer_id=officer.persona_id, reason=reason, purpose="hold"
    )


async def _check_no_overlap(session: AsyncSession, matter_id: uuid.UUID, body: HoldCreate) -> None:
    """409 ``overlapping-hold`` when an active hold of the matter shares a custodian or a group
    with ``body`` over an overlapping range."""
    custodians = {str(c) for c in body.custodians}
    groups = {str(g) for g in body.group_ids}
    for other in await _active_holds(session, matter_id):
        shared = custodians & set(other.custodians) or groups & set(other.group_ids)
        if shared and _overlap(body.date_from, body.date_to, other.date_from, other.date_to):
            raise Conflict(
                "Active hold {hold_id} of this matter already holds some of these custodians or groups "
                "over an overlapping range.",
                params={"hold_id": other.id},
                slug="overlapping-hold",
                extra={"hold_id": str(other.id)},
            )


def _overlap(a_from: datetime, a_to: datetime | None, b_from: datetime, b_to: datetime | None) -> bool:
    """Whether two ranges (an open end: none) share an instant."""
    return (b_to is None or a_from <= b_to) and (a_to is None or b_from <= a_to)


async def _active_holds(session: AsyncSession, matter_id: uuid.UUID) -> Sequence[Hold]:
    query = select(Hold).where(col(Hold.matter_id) == matter_id, col(Hold.status) == ACTIVE)
    return (await session.scalars(query)).all()


async def find_holds(
    session: AsyncSession, officer: Officer, matter_id: uuid.UUID, *, before: uuid.UUID | None, limit: int
) -> list[HeldView]:
    """Up to ``limit + 1`` holds of the matter, newest first; the read is audited."""
    matter = await get_matter(session, matter_id)
    query = (
        select(Hold).where(col(Hold.matter_id) == matter.id).order_by(col(Hold.id).desc()).limit(limit + 1)
    )
    if before is not None:
        query = query.where(col(Hold.id) < before)
    holds = list((await session.scalars(query)).all())
    personas = await _personas(session, [h.id for h in holds])
    audit.record(session, officer.persona_id, "holds.listed", matter_id=matter.id)
    await session.commit()
    return [(h, personas.get(h.id, [])) for h in holds]


async def read_hold(
    session: AsyncSession, officer: Officer, matter_id: uuid.UUID, hold_id: uuid.UUID
) -> HeldView:
    hold = await _get_hold(session, matter_id, hold_id)
    personas = await _personas(session, [hold.id])
    audit.record(session, officer.persona_id, "hold.read", matter_id=matter_id, hold_id=str(hold.id))
    await session.commit()
    return hold, personas.get(hold.id, [])


async def release(
    session: AsyncSession, officer: Officer, matter_id: uuid.UUID, hold_id: uuid.UUID, reason: str
) -> HeldView:
    """Releases an active hold and commits: the next disposition may dispose of what it kept.
    409 ``hold-released`` for a hold released already."""
    matter = await lock_matter(session, matter_id)
    check_open(matter)
    hold = await _get_hold(session, matter.id, hold_id)
    if hold.status != ACTIVE:
        await session.rollback()
        raise Conflict("The hold is released already.", slug="hold-released")
    hold.status, hold.released_at = RELEASED, utcnow()
    hold.released_by, hold.release_reason = officer.persona_id, reason
    audit.record(
        session, officer.persona_id, "hold.released", matter_id=matter.id, hold_id=str(hold.id), reason=reason
    )
    await session.commit()
    personas = await _personas(session, [hold.id])
    return hold, personas.get(hold.id, [])


async def _get_hold(session: AsyncSession, matter_id: uuid.UUID, hold_id: uuid.UUID) -> Hold:
    hold = await session.get(Hold, hold_id)
    if hold is None or hold.matter_id != matter_id:
        raise NotFound("No such hold in this matter.")
    return hold


async def _personas(session: AsyncSession, hold_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[HoldPersona]]:
    if not hold_ids:
        return {}
    query = (
        select(HoldPersona)
        .where(col(HoldPersona.hold_id).in_(hold_ids))
        .order_by(col(HoldPersona.account_id), col(HoldPersona.context).desc())
    )
    found: dict[uuid.UUID, list[HoldPersona]] = {}
    for row in (await session.scalars(query)).all():
        found.setdefault(row.hold_id, []).append(row)
    return found
