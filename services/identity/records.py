"""What identity does for records (decision 0033).

Records asks identity for the personas of the accounts a hold or an export names: the one
resolution of an account to both its personas besides an administrator's
(``administration.resolve_persona_link``), so identity writes it to its audit log, with the
officer, the matter and the reason, before it answers. It also asks which personas a persona's
own export covers: a professional persona's owner has both, a personal persona only itself
(its token must not reach its professional twin).

Records' policy disposes of identity's operational records by age: its audit log and its
finished webhook deliveries. The event that says so (``internal.records.dispose``) is only
recorded (``Disposal``); the ``Disposals`` worker deletes the rows in short transactions of
``batch`` rows each, so that a large table is never one long transaction and the event is
acknowledged at once. A delivery still pending is never disposed of.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.db import Database, upsert
from kit.errors import NotFound
from kit.housekeeping import Periodic
from kit.timeutil import utcnow
from services.identity import audit, personas, webhooks
from services.identity.models import Account, AuditEntry, Disposal, Persona, WebhookDelivery
from services.identity.schemas import (
    Custodian,
    CustodiansAnswer,
    CustodiansRequest,
    OwnerPersonas,
    RecordsProfile,
    records_profile,
)

log = logging.getLogger("identity.records")

RESOLVED = "records.custodians.resolved"
AUDIT_LOG, WEBHOOK_DELIVERIES = "audit_log", "webhook_deliveries"
CLASSES = (AUDIT_LOG, WEBHOOK_DELIVERIES)
FINISHED = (webhooks.DELIVERED, webhooks.FAILED)


def _profiles(found: Iterable[Persona]) -> list[RecordsProfile]:
    """The professional persona first."""
    ordered = sorted(found, key=lambda p: p.kind != personas.PROFESSIONAL)
    return [records_profile(p, personas.effective_status(p)) for p in ordered]


async def resolve_custodians(session: AsyncSession, request: CustodiansRequest) -> CustodiansAnswer:
    """Each account asked, in the order asked, with its personas (an erased one is gone); the
    accounts identity does not know are listed apart. The resolution of the known ones is one
    audit entry, committed before the answer; none is written when no account is known."""
    asked = list(dict.fromkeys(request.account_ids))
    known_ids = set((await session.scalars(select(col(Account.id)).where(col(Account.id).in_(asked)))).all())
    rows = (await session.scalars(select(Persona).where(col(Persona.account_id).in_(known_ids)))).all()
    by_account: dict[uuid.UUID, list[Persona]] = {}
    for persona in rows:
        by_account.setdefault(persona.account_id, []).append(persona)
    known = [a for a in asked if a in known_ids]
    answer = CustodiansAnswer(
        custodians=[Custodian(account_id=a, personas=_profiles(by_account.get(a, []))) for a in known],
        unknown=[a for a in asked if a not in known_ids],
    )
    if known:
        await audit.record_officer(
            session,
            officer_id=request.officer_id,
            action=RESOLVED,
            reason=request.reason,
            matter_id=str(request.matter_id),
            purpose=request.purpose,
            account_ids=[str(a) for a in known],
        )
        await session.commit()
    return answer


async def owner_personas(session: AsyncSession, persona_id: uuid.UUID) -> OwnerPersonas:
    """The personas a persona's own export covers: a professional persona and its owner's
    personal persona, if any; a personal persona alone. Not audited: it is the owner's own."""
    persona = await session.get(Persona, persona_id)
    if persona is None:
        raise NotFound("No persona with this id.")
    found = [persona]
    if persona.kind == personas.PROFESSIONAL:
        personal = await session.scalar(
            select(Persona).where(
                col(Persona.account_id) == persona.account_id, col(Persona.kind) == personas.PERSONAL
            )
        )
        if personal is not None:
            found.append(personal)
    return OwnerPersonas(personas=_profiles(found))


async def request_disposal(session: AsyncSession, record_class: str, before: datetime) -> bool:
    """Records, in the caller's transaction, that the rows of ``record_class`` created before
    ``before`` are to go; a later cut-off replaces an earlier one still waiting, an earlier one
    changes nothing. Returns False for a class identity does not hold (another owner's)."""
    if record_class not in CLASSES:
        return False
    values = {"record_class": record_class, "before": before, "requested_at": utcnow()}
    await upsert(session, Disposal, values, ["record_class"], update=False)
    await session.execute(
        update(Disposal)
        .where(col(Disposal.record_class) == record_class, col(Disposal.before) < before)
        .values(before=before, requested_at=utcnow())
    )
    return True


def _disposable(record_class: str, before: datetime) -> tuple[Table, list[ColumnElement[bool]]]:
    """The table of a class and the conditions of its rows that go."""
    if record_class == AUDIT_LOG:
        return AuditEntry.__table__, [col(AuditEntry.created_at) < before]  # type: ignore[attr-defined]
    return WebhookDelivery.__table__, [  # type: ignore[attr-defined]
        col(WebhookDelivery.created_at) < before,
        col(WebhookDelivery.status).in_(FINISHED),
    ]


class Disposals(Periodic):
    """A worker: carries out the disposals records asked for, ``batch`` rows per transaction."""

    def __init__(self, database: Database, *, interval: float = 60, batch: int = 1000) -> None:
        super().__init__(interval)
        self.database = database
        self.batch = batch

    async def tick(self) -> dict[str, int]:
        return await self.dispose_requested()

    async def dispose_requested(self) -> dict[str, int]:
        """Deletes everything asked for; returns how many rows of each class went. A request
        is forgotten once its rows are gone, unless a later cut-off replaced it meanwhile."""
        async with self.database.sessionmaker() as session:
            requests = [(d.record_class, d.before) for d in (await session.scalars(select(Disposal))).all()]
        removed: dict[str, int] = {}
        for record_class, before in requests:
            if record_class in CLASSES:
                removed[record_class] = 0
                while True:
                    if self.stopping.is_set():
                        return removed  # the request stays, for the next start
                    count = await self._delete_batch(record_class, before)
                    removed[record_class] += count
                    if count < self.batch:
                        break
            async with self.database.sessionmaker() as session, session.begin():
                await session.execute(
                    delete(Disposal).where(
                        col(Disposal.record_class) == record_class, col(Disposal.before) == before
                    )
                )
            log.info(
                "disposal done",
                extra={
                    "record_class": record_class,
                    "before": before.isoformat(),
                    "removed": removed.get(record_class, 0),
                },
            )
        return removed

    async def _delete_batch(self, record_class: str, before: datetime) -> int:
        table, conditions = _disposable(record_class, before)
        (key,) = table.primary_key.columns
        due = select(key).where(*conditions).limit(self.batch)
        # The conditions again on the rows deleted: a delivery sent back to pending since the
        # batch was chosen stays.
        async with self.database.sessionmaker() as session, session.begin():
            result: Any = await session.execute(delete(table).where(key.in_(due), *conditions))
        return int(result.rowcount or 0)
