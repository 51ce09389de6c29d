"""The terms that hold posts and comments for review, per context (decision 0032, "Held content
and the stream").

Feed matches new text against them, so feed keeps a copy: every change raises the context's
``term_set.version`` and publishes ``internal.moderation.terms`` with the whole list of that
context, in the change's own transaction. Feed replaces its copy with any list of a higher
version, so a lost or reordered event is repaired by the next one and never needs a diff.

The context's ``term_set`` row is locked first by every change: changes of one context follow
one another, so the versions they publish rise in the order of the lists they carry, and the
500-term cap and the duplicate check cannot be passed by two requests at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.contexts import Context
from kit.db import upsert
from kit.errors import Conflict, NotFound
from kit.outbox import Outbox
from kit.text import SingleLineText
from services.moderation.models import Term, TermSet

MAX_TERMS = 500
TERMS_EVENT = "internal.moderation.terms"
EXISTS = "term-exists"
TOO_MANY = "too-many-terms"

Match = Literal["literal", "word"]
TermText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=100),
    SingleLineText,
    Field(
        description="2 to 100 characters once surrounding spaces are removed; matched without "
        "regard to case.",
        examples=["confidential"],
    ),
]


class TermCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    term: TermText
    match: Match = Field(
        description="`literal`: anywhere in the text; `word`: only as a whole word (between word boundaries)."
    )
    context: Context = Field(description="The context whose posts and comments it holds.")


class TermEntry(BaseModel):
    """One term as feed receives it."""

    id: uuid.UUID
    term: str
    match: Match


class TermsChanged(BaseModel):
    """``internal.moderation.terms`` (moderation -> feed): every term of the context, at
    ``version``; the subject is the context."""

    context: Context
    version: int
    terms: list[TermEntry]


class TermPublic(BaseModel):
    id: uuid.UUID
    context: Context
    term: str
    match: Match
    created_at: datetime


def term_public(row: Term) -> TermPublic:
    return TermPublic.model_validate(row, from_attributes=True)


async def find(
    session: AsyncSession, *, context: str | None, after: uuid.UUID | None, limit: int
) -> list[Term]:
    """Up to ``limit + 1`` terms after ``after``, oldest first (ids are time-ordered)."""
    query = select(Term).order_by(col(Term.id)).limit(limit + 1)
    if context is not None:
        query = query.where(col(Term.context) == context)
    if after is not None:
        query = query.where(col(Term.id) > after)
    return list((await session.scalars(query)).all())


async def add(session: AsyncSession, outbox: Outbox, body: TermCreate) -> Term:
    """Adds a term to its context and commits, with the context's new list published. 409
    ``term-exists`` for a term the context has already (in any case, with the same match), 409
    ``too-many-terms`` past ``MAX_TERMS``; nothing is written then."""
    term_set = await _lock(session, body.context)
    terms = await _terms_of(session, body.context)
    folded = body.term.casefold()
    if any(t.match == body.match and t.term.casefold() == folded for t in terms):
        raise Conflict(
            "The {context} context has this term already.", params={"context": body.context}, slug=EXISTS
        )
    if len(terms) >= MAX_TERMS:
        raise Conflict(
            "A context holds at most {limit} terms; remove one first.",
            params={"limit": MAX_TERMS},
            slug=TOO_MANY,
        )
    row = Term(context=body.context, term=body.term, match=body.match)
    session.add(row)
    await session.flush()
    await _publish(session, outbox, term_set, [*terms, row])
    try:
        await session.commit()
    except IntegrityError as exc:  # the unique constraint, should the lock ever be bypassed
        await session.rollback()
        raise Conflict(
            "The {context} context has this term already.", params={"context": body.context}, slug=EXISTS
        ) from exc
    return row


async def remove(session: AsyncSession, outbox: Outbox, term_id: uuid.UUID) -> None:
    """Deletes a term and commits, with its context's new list published; 404 for a term that
    does not exist (or was deleted by a request that came first)."""
    context = await session.scalar(select(col(Term.context)).where(col(Term.id) == term_id))
    if context is None:
        raise NotFound("No such term.")
    term_set = await _lock(session, context)
    result: Any = await session.execute(delete(Term).where(col(Term.id) == term_id))
    if not result.rowcount:
        raise NotFound("No such term.")
    await _publish(session, outbox, term_set, await _terms_of(session, context))
    await session.commit()


async def _lock(session: AsyncSession, context: str) -> TermSet:
    """The context's term set, created at version 0 if it has none yet, locked until the
    transaction ends (SQLite: the write the insert attempt starts serialises writers anyway)."""
    await upsert(session, TermSet, {"context": context, "version": 0}, ["context"], update=False)
    return (
        await session.scalars(
            select(TermSet)
            .where(col(TermSet.context) == context)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()


async def _terms_of(session: AsyncSession, context: str) -> list[Term]:
    return list(
        (await session.scalars(select(Term).where(col(Term.context) == context).order_by(col(Term.id)))).all()
    )


async def _publish(session: AsyncSession, outbox: Outbox, term_set: TermSet, terms: list[Term]) -> None:
    """Raises the set's version and announces the context's whole list at it."""
    term_set.version += 1
    await session.flush()
    event = TermsChanged(
        context=term_set.context,
        version=term_set.version,
        terms=[TermEntry(id=t.id, term=t.term, match=t.match) for t in terms],
    )
    await outbox.publish(session, TERMS_EVENT, term_set.context, event.model_dump(mode="json"))
