"""Personas and the privacy boundary between a person's two faces.

Nothing that leaves identity (a response to anyone but the owner, an event, a log line) carries
an account id, an email, or the id of the other persona of the same account; and nothing about
one persona moves because of something done to the account (docs/boundary.md): its
``updated_at`` is its own last edit, and an account-level change reaches a personal persona
only after a delay of its own (services/identity/accounts.py).

A persona's status is its account's, as that change reached it (at once for the professional
persona, after its own delay for the personal one), unless moderation holds the persona
(decision 0032): ``effective_status`` is the one rule, and what every answer, sign-in and event
follows. A hold is the persona's own and touches neither its account nor its twin.

The flows here are the directory of one context, a persona's owner editing it, the owner
creating and erasing the personal persona, and moderation setting and lifting a hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, String, and_, cast, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.errors import Conflict, Forbidden, NotFound, unprocessable_from
from kit.outbox import Outbox
from kit.text import LIKE_ESCAPE, like_escape
from kit.timeutil import as_utc, utcnow
from services.identity.models import Account, Persona
from services.identity.schemas import PersonalCreate, PersonalUpdate, ProfessionalUpdate

PROFESSIONAL, PERSONAL = "professional", "personal"
HR_OWNED_FIELDS = {"display_name", "job_title", "department"}


def effective_status(persona: Persona) -> str:
    """The status the persona shows everywhere: ``persona.status`` (its account's status as it
    has reached this persona), and ``suspended`` while moderation holds an active one. So
    reactivating the account never lifts a hold, and lifting a hold never reactivates a
    suspended or deactivated account. The account is not consulted: its change reaches a
    personal persona only at that persona's own pending time (accounts.py), and a hold lifted
    meanwhile must not show it early."""
    if persona.moderation_hold and persona.status == "active":
        return "suspended"
    return persona.status


def shown() -> ColumnElement[bool]:
    """``effective_status(persona) == 'active'``, as a condition of a statement."""
    return and_(col(Persona.status) == "active", col(Persona.moderation_hold).is_(False))


def event_data(persona: Persona) -> dict[str, Any]:
    """A persona as the other services see it: its own fields, never its account. The event's
    own ``time`` orders a persona's changes; ``updated_at`` is only the profile's last edit."""
    return {
        "id": str(persona.id),
        "context": persona.kind,
        "handle": persona.handle,
        "display_name": persona.display_name,
        "status": effective_status(persona),
        "discoverable": persona.discoverable,
        "updated_at": None if persona.updated_at is None else persona.updated_at.isoformat(),
    }


def touch(persona: Persona) -> None:
    """Marks an edit of the persona's own profile (by its owner, or by HR for a professional
    one). Nothing else may move ``updated_at``."""
    persona.updated_at = utcnow()


def listed(kind: str) -> tuple[ColumnElement[bool], ...]:
    """Who the directory of the context ``kind`` lists, and people search finds: its active
    personas (none held by moderation), never a personal persona that is not discoverable."""
    return (col(Persona.kind) == kind, shown(), col(Persona.discoverable).is_(True))


async def search(
    session: AsyncSession, kind: str, *, q: str | None, after: str | None, limit: int
) -> Sequence[Persona]:
    """A page of the directory of one context, sorted by handle: only active personas (none
    held by moderation), and never a personal persona that is not discoverable."""
    query = select(Persona).where(*listed(kind))
    if q:
        pattern = f"%{like_escape(q.strip())}%"
        query = query.where(
            or_(
                func.lower(Persona.handle).like(pattern, escape=LIKE_ESCAPE),
                func.lower(Persona.display_name).like(pattern, escape=LIKE_ESCAPE),
                func.lower(func.coalesce(Persona.department, "")).like(pattern, escape=LIKE_ESCAPE),
                func.lower(cast(Persona.skills, String)).like(pattern, escape=LIKE_ESCAPE),
            )
        )
    if after is not None:
        query = query.where(Persona.handle > after)
    return (await session.scalars(query.order_by(Persona.handle).limit(limit + 1))).all()


async def visible(session: AsyncSession, kind: str, persona_id: uuid.UUID) -> Persona:
    """An active persona of the context ``kind``. One of another context answers exactly as one
    that does not exist: the statement itself leaves it out, so both come back as no row, on the
    same path and in the same time."""
    persona = await session.scalar(
        select(Persona).where(
            col(Persona.id) == persona_id,
            col(Persona.kind) == kind,
            shown(),
        )
    )
    if persona is None:
        raise NotFound("No persona with this id.")
    return persona


async def update_own(
    session: AsyncSession,
    outbox: Outbox,
    own: Persona,
    account: Account,
    persona_id: uuid.UUID,
    body: ProfessionalUpdate | PersonalUpdate,
) -> Persona:
    """Only the token's own persona (``own``) can be edited; its fields depend on its kind, and
    HR owns some fields of a provisioned professional persona."""
    persona = await visible(session, own.kind, persona_id)
    if persona.id != own.id:
        raise Forbidden("Only the persona's owner, with that persona's token, can edit it.")
    model = ProfessionalUpdate if persona.kind == PROFESSIONAL else PersonalUpdate
    sent = body.model_dump(exclude_unset=True)
    foreign = sorted(sent.keys() - model.model_fields.keys())
    if foreign:
        # a valid body of the other kind: it conflicts with this persona, it is not malformed
        raise Conflict(
            "A {kind} persona has no {fields}.", params={"kind": persona.kind, "fields": ", ".join(foreign)}
        )
    try:
        changes = model.model_validate(sent).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise unprocessable_from(exc) from None
    hr_owned = HR_OWNED_FIELDS & changes.keys()
    if persona.kind == PROFESSIONAL and account.provisioned and hr_owned:
        raise Forbidden(
            "HR provisioning owns {fields}; ask HR to change them.",
            params={"fields": ", ".join(sorted(hr_owned))},
        )
    for field, value in changes.items():
        setattr(persona, field, value)
    touch(persona)
    await outbox.publish(session, "persona.updated", str(persona.id), event_data(persona))
    await session.commit()
    return persona


async def create_personal(
    session: AsyncSession, outbox: Outbox, account_id: uuid.UUID, body: PersonalCreate
) -> Persona:
    """The account's personal persona; an account has one at most, and its handle is unique
    among personal personas."""
    existing = await session.scalar(
        select(Persona).where(Persona.account_id == account_id, Persona.kind == PERSONAL)
    )
    if existing is not None:
        raise Conflict("This account has a personal persona already.")
    if await session.scalar(
        select(Persona.id).where(Persona.kind == PERSONAL, Persona.handle == body.handle)
    ):
        raise Conflict("This handle is taken.")
    persona = Persona(account_id=account_id, kind=PERSONAL, **body.model_dump())
    session.add(persona)
    try:
        await session.flush()
        await outbox.publish(session, "persona.created", str(persona.id), event_data(persona))
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict("A personal persona exists already, or the handle is taken.") from None
    return persona


async def erase_personal(session: AsyncSession, outbox: Outbox, account_id: uuid.UUID) -> None:
    """Erases the account's personal persona; the services that hold its content remove it on
    the ``persona.erased`` event."""
    persona = await session.scalar(
        select(Persona).where(Persona.account_id == account_id, Persona.kind == PERSONAL)
    )
    if persona is None:
        raise NotFound("There is no personal persona.")
    await outbox.publish(
        session, "persona.erased", str(persona.id), {"id": str(persona.id), "context": PERSONAL}
    )
    await session.delete(persona)
    await session.commit()


async def set_hold(
    session: AsyncSession, outbox: Outbox, persona_id: uuid.UUID, context: str, *, held: bool, at: datetime
) -> bool:
    """Sets or lifts moderation's hold on one persona, as decided at ``at`` (the time of the
    moderation event), and announces the persona with its new status when that status changes.
    An event older than the last one applied is ignored, so a suspension and its lifting
    delivered out of order end as decided; so is a persona of another context than the event
    says, or one that is gone. Returns whether the hold was applied."""
    persona = await session.scalar(select(Persona).where(col(Persona.id) == persona_id).with_for_update())
    if persona is None or persona.kind != context:
        return False
    if persona.moderation_hold_at is not None and as_utc(at) < as_utc(persona.moderation_hold_at):
        return False
    before = effective_status(persona)
    persona.moderation_hold = held
    persona.moderation_hold_at = at
    if effective_status(persona) != before:
        await outbox.publish(session, "persona.updated", str(persona.id), event_data(persona))
    return True
