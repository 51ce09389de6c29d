"""What a legal hold covers, as one SQL condition (decision 0033, "Holds").

An active hold covers an item of the records copy whose author is one of the hold's personas
(the custodians' personas as identity resolved them) or whose group is one of its groups,
created within its range (``date_from`` to ``date_to``, both included; no end when
``date_to`` is null), and, when the hold has terms, any of whose versions' text contains a
term in any case. A comment or a reaction on a covered post is covered too, and every version
of a covered item is (versions are never disposed of apart from their item, but as edit
history of a post that is not covered).

The condition is a SQLAlchemy expression over the item table (or an alias of it) given by the
caller, so that disposition's and exports' statements select with it on both databases and a
hold is never read into Python to decide what goes. Each subquery correlates everything but its
own tables (``correlate_except``): SQLAlchemy would otherwise correlate only with the query
right around it, and a deeper one would select from the item table again instead of reading the
caller's row. Case: PostgreSQL's ``ILIKE`` folds any
letter; SQLite's ``LIKE`` (what ``ilike`` becomes there, on ``lower()``) folds ASCII letters
only, so a term with other letters matches their case as written there.

Media (decision 0036): a hold covers a file attached to a post or a comment it covers, and a
file whose own uploader, group, time of attachment (and, with terms, description in any
version) it names; ``keeps`` keeps a post or a comment with a file covered by its own (disposing
of a post or a comment destroys its files), so a held file is never disposed of.

``serialise`` orders a hold's placement with disposition's batches on PostgreSQL (SQLite has
one writer at a time anyway): a hold committed while a batch runs is seen by the batch's
delete, and a batch never deletes what a hold placed in the meantime covers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.text import LIKE_ESCAPE, like_escape
from services.records.classes import GROUP_REACH, PROFESSIONAL_POST_CLASSES
from services.records.models import (
    Hold,
    HoldGroup,
    HoldPersona,
    HoldTerm,
    Item,
    ItemVersion,
    MediaRecord,
    MediaVersion,
)

ACTIVE = "active"
_LOCK_KEY = int.from_bytes(hashlib.blake2b(b"records:holding", digest_size=8).digest(), "big", signed=True)


def pattern(term: str) -> str:
    """The LIKE pattern that finds ``term`` anywhere, in any case (``HoldTerm.pattern``)."""
    return f"%{like_escape(term)}%"


def _held(row: Any, texts: Callable[[Any, Any], ColumnElement[bool]]) -> ColumnElement[bool]:
    """An active hold names ``row`` (an item or a media: ``author_id``, ``group_id``,
    ``created_at``) and, when it has terms, ``texts(hold, term)`` finds one in its text."""
    hold = Hold.__table__.alias()  # type: ignore[attr-defined]
    persona = HoldPersona.__table__.alias()  # type: ignore[attr-defined]
    group = HoldGroup.__table__.alias()  # type: ignore[attr-defined]
    term = HoldTerm.__table__.alias()  # type: ignore[attr-defined]
    any_term = HoldTerm.__table__.alias()  # type: ignore[attr-defined]
    scope = or_(
        exists()
        .where(persona.c.hold_id == hold.c.id, persona.c.persona_id == row.c.author_id)
        .correlate_except(persona),
        exists()
        .where(group.c.hold_id == hold.c.id, group.c.group_id == row.c.group_id)
        .correlate_except(group),
    )
    text = or_(
        ~exists().where(any_term.c.hold_id == hold.c.id).correlate_except(any_term),
        texts(hold, term),
    )
    return (
        exists()
        .where(
            hold.c.status == ACTIVE,
            row.c.created_at >= hold.c.date_from,
            or_(hold.c.date_to.is_(None), row.c.created_at <= hold.c.date_to),
            scope,
            text,
        )
        .correlate_except(hold)
    )


def own(item: Any) -> ColumnElement[bool]:
    """An active hold covers the item by its own author or group, creation and text (not by
    its post's)."""
    version = ItemVersion.__table__.alias()  # type: ignore[attr-defined]

    def texts(hold: Any, term: Any) -> ColumnElement[bool]:
        return (
            exists()
            .where(
                term.c.hold_id == hold.c.id,
                version.c.item_id == item.c.id,
                version.c.body.ilike(term.c.pattern, escape=LIKE_ESCAPE),
            )
            .correlate_except(term, version)
        )

    return _held(item, texts)


def media_own(media: Any) -> ColumnElement[bool]:
    """An active hold covers the media by its own uploader or group, attachment and
    description (not by its owner's). ``media`` is ``MediaRecord.__table__`` or an alias."""
    version = MediaVersion.__table__.alias()  # type: ignore[attr-defined]

    def texts(hold: Any, term: Any) -> ColumnElement[bool]:
        return (
            exists()
            .where(
                term.c.hold_id == hold.c.id,
                version.c.media_id == media.c.id,
                version.c.description.ilike(term.c.pattern, escape=LIKE_ESCAPE),
            )
            .correlate_except(term, version)
        )

    return _held(media, texts)


def media_covered(media: Any) -> ColumnElement[bool]:
    """An active hold covers the media: by itself, or as a file of a covered post or comment
    (a comment covered by its own, or by its post's, which is the media's ``post_id``)."""
    post = Item.__table__.alias()  # type: ignore[attr-defined]
    comment = Item.__table__.alias()  # type: ignore[attr-defined]
    return or_(
        media_own(media),
        exists().where(post.c.id == media.c.post_id, own(post)).correlate_except(post),
        exists().where(comment.c.id == media.c.comment_id, own(comment)).correlate_except(comment),
    )


def covered(item: Any) -> ColumnElement[bool]:
    """An active hold covers the item: by itself, or as a comment or reaction of a covered
    post. ``item`` is ``Item.__table__`` or an alias of it, in the caller's FROM."""
    post = Item.__table__.alias()  # type: ignore[attr-defined]
    return or_(own(item), exists().where(post.c.id == item.c.post_id, own(post)).correlate_except(post))


def keeps(item: Any) -> ColumnElement[bool]:
    """An active hold keeps the item: it is covered, or it is a post with a comment or
    reaction covered by its own (disposing of a post destroys its comments and reactions), or
    a post or a comment with a media covered by its own (a post's take its comments' too)."""
    child = Item.__table__.alias()  # type: ignore[attr-defined]
    on_post = MediaRecord.__table__.alias()  # type: ignore[attr-defined]
    on_comment = MediaRecord.__table__.alias()  # type: ignore[attr-defined]
    return or_(
        covered(item),
        exists().where(child.c.post_id == item.c.id, own(child)).correlate_except(child),
        exists().where(on_post.c.post_id == item.c.id, media_own(on_post)).correlate_except(on_post),
        exists()
        .where(on_comment.c.comment_id == item.c.id, media_own(on_comment))
        .correlate_except(on_comment),
    )


async def reaches_before(session: AsyncSession, klass: str, cutoff: datetime) -> bool:
    """Whether an active hold that may cover items of ``klass`` starts before ``cutoff``, so
    that disposing of the class up to the cut-off would meet it. A hold naming groups and no
    custodian reaches only ``classes.GROUP_REACH`` (and the operational classes, which are
    aged as a whole)."""
    hold = Hold.__table__  # type: ignore[attr-defined]
    conditions = [hold.c.status == ACTIVE, hold.c.date_from < cutoff]
    if klass in PROFESSIONAL_POST_CLASSES and klass not in GROUP_REACH:
        persona = HoldPersona.__table__  # type: ignore[attr-defined]
        conditions.append(exists().where(persona.c.hold_id == hold.c.id))
    query = select(exists().where(*conditions))
    return bool(await session.scalar(query))


async def serialise(session: AsyncSession) -> None:
    """Orders the caller's transaction with disposition's batches and holds' placements
    (PostgreSQL: a transaction-scoped advisory lock; SQLite: nothing, its writers are one at a
    time)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
