"""What a post's text refers to: ``@handle`` mentions and ``#tag`` tags; the language it is
written in; and whether it holds one of moderation's terms, which holds the post or comment for
review (decision 0032)."""

from __future__ import annotations

import re
import unicodedata
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Uuid, bindparam, exists, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.handles import HANDLE_CHARACTERS
from kit.outbox import Outbox
from kit.search import detect, language
from kit.timeutil import as_utc
from services.feed.models import Comment, Follow, HeldTerm, HeldTermSet, PersonaReplica, Post

MAX_MENTIONS = 20
MAX_TAGS = 10
_MENTION = re.compile(rf"(?<![\w@])@({HANDLE_CHARACTERS})(?![\w@])")
_TAG = re.compile(r"(?<![\w#&/])#([^\W_][\w-]{0,39})(?![\w-])")


def _unique(values: list[str], limit: int) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
        if len(seen) == limit:
            break
    return seen


def text_language(declared: str | None, text: str) -> str | None:
    """The language of a new text: the one its author declared (a BCP 47 tag, checked: 422
    otherwise), else the one ``kit.search.detect`` reads in it, else unknown (None)."""
    return language(declared) if declared is not None else detect(text)


def edited_language(fields: set[str], declared: str | None, text: str, current: str | None) -> str | None:
    """The language of an edited text: the one the edit declares (``lang`` in ``fields``; null
    detects it), else the one it had (detected again when it had none)."""
    if "lang" in fields:
        return text_language(declared, text)
    return current if current is not None else detect(text)


def tag_name(value: str) -> str:
    """Tags match case-insensitively and whatever Unicode form they were typed in."""
    return unicodedata.normalize("NFKC", value).casefold()


def parse_tags(body: str) -> list[str]:
    return _unique([tag_name(m) for m in _TAG.findall(body)], MAX_TAGS)


def parse_handles(body: str) -> list[str]:
    return _unique([m.lower() for m in _MENTION.findall(body)], MAX_MENTIONS)


async def resolve_mentions(
    session: AsyncSession, body: str, context: str, author_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The active personas of ``context`` that ``body`` mentions, in order of first mention.
    A handle of the other context or of nobody is left as plain text, and so is the handle of
    a persona that is not discoverable, unless it follows the author (or is the author): a
    mention must not hand its id to someone it has not chosen."""
    handles = parse_handles(body)
    if not handles:
        return []
    follows_author = exists().where(
        col(Follow.follower_id) == col(PersonaReplica.id), col(Follow.followee_id) == author_id
    )
    rows = (
        await session.execute(
            select(PersonaReplica.id, PersonaReplica.handle).where(
                col(PersonaReplica.handle).in_(handles),
                col(PersonaReplica.context) == context,
                col(PersonaReplica.status) == "active",
                or_(
                    col(PersonaReplica.discoverable).is_(True),
                    col(PersonaReplica.id) == author_id,
                    follows_author,
                ),
            )
        )
    ).all()
    found = {handle: persona_id for persona_id, handle in rows}
    return [{"id": str(found[h]), "handle": h} for h in handles if h in found]


def _folded(text: str) -> str:
    """Text as terms match it: whatever its case or Unicode form."""
    return unicodedata.normalize("NFKC", text).casefold()


def held_by(text: str, terms: Sequence[Term]) -> list[str]:
    """The ids of the ``terms`` that ``text`` holds, in the terms' order: a ``literal`` term
    anywhere, a ``word`` term as a whole word (no word character right before or after it,
    which is ``\\b`` for a term that starts and ends with one). Case and Unicode form do not
    matter."""
    folded = _folded(text)
    found = []
    for term in terms:
        needle = _folded(term.term)
        if not needle:
            continue
        if term.match == "word":
            hit = re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", folded) is not None
        else:
            hit = needle in folded
        if hit:
            found.append(str(term.id))
    return found


@dataclass(frozen=True, slots=True)
class Term:
    """One of a context's held-content terms, as ``held_by`` matches it (``models.HeldTerm``)."""

    id: uuid.UUID
    term: str
    match: str


_TERMS = select(HeldTerm).where(col(HeldTerm.context) == bindparam("context")).order_by(col(HeldTerm.id))
_VERSION = select(HeldTermSet.version).where(col(HeldTermSet.context) == bindparam("context"))
# Each database's terms of each context as last read, with the version of the set they came
# from (a set's version names its terms: ``moderation.replace_terms``). A write reads the
# version in its own transaction, with its author (``writer``), and the terms only when the set
# is not the one last read. Two contexts, a few hundred terms each at most.
_read: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, tuple[Term, ...]]]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Writer:
    """What a write needs of its writer, read with another statement (``writer_columns``):
    the name its answer shows (None when the replica does not hold the writer), and the
    version of its context's held-content terms, for ``terms_at``."""

    handle: str | None
    display_name: str | None
    terms_version: int | None


def writer_columns(persona: Any, context: Any) -> tuple[Any, ...]:
    """``writer``'s read as columns for another statement to select (``access.visible_post``),
    for the bound parameters ``persona`` and ``context``; ``written_by`` reads them back from
    the end of its row."""

    def own(column: Any) -> Any:
        return select(column).where(col(PersonaReplica.id) == persona).scalar_subquery()

    version = select(HeldTermSet.version).where(col(HeldTermSet.context) == context).scalar_subquery()
    return (
        own(col(PersonaReplica.handle)).label("writer_handle"),
        own(col(PersonaReplica.display_name)).label("writer_name"),
        version.label("terms_version"),
    )


def written_by(row: Any) -> Writer:
    """The ``Writer`` in the last columns of a row that selected ``writer_columns``."""
    return Writer(*row[-3:])


_WRITER = select(*writer_columns(bindparam("persona", type_=Uuid()), bindparam("context")))


async def writer(session: AsyncSession, persona_id: uuid.UUID, context: str) -> Writer:
    """A writer (``Writer``) of ``context``, in a statement of its own: for a write that reads
    nothing else to select it with."""
    return written_by((await session.execute(_WRITER, {"persona": persona_id, "context": context})).one())


async def terms_of(session: AsyncSession, context: str) -> tuple[Term, ...]:
    """The held-content terms of ``context``, in a stable order."""
    return await terms_at(session, context, await session.scalar(_VERSION, {"context": context}))


async def terms_at(session: AsyncSession, context: str, version: int | None) -> tuple[Term, ...]:
    """The held-content terms of ``context`` in the set of ``version``, as the caller's
    transaction read it (None: the context has no set, so no terms)."""
    if version is None:
        return ()
    known = _read.setdefault(session.get_bind(), {})
    cached = known.get(context)
    if cached is not None and cached[0] == version:
        return cached[1]
    rows = (await session.scalars(_TERMS, {"context": context})).all()
    terms = tuple(Term(row.id, row.term, row.match) for row in rows)
    known[context] = (version, terms)
    return terms


def post_text(body: str, links: Sequence[dict[str, Any]]) -> str:
    """What of a post the terms are matched against: its body, and its links' addresses and
    titles."""
    parts = [body]
    for link in links:
        parts += [str(link.get("url") or ""), str(link.get("title") or "")]
    return "\n".join(parts)


async def hold(
    session: AsyncSession,
    outbox: Outbox,
    item: Post | Comment,
    post: Post,
    term_ids: list[str],
    at: datetime,
) -> None:
    """Holds ``item`` (``post`` itself, or a comment on it) for review: it is saved ``held``,
    seen by its author alone, and ``internal.content.held`` tells moderation, which files a
    system report on it; a moderator releases it or acts on it. ``at`` is when it was held:
    its ``created_at`` when it is held as it is written (it was never announced), the edit's
    time when an edit is held."""
    item.moderation = "held"
    item.moderated_at = at
    comment = isinstance(item, Comment)
    await outbox.publish(
        session,
        "internal.content.held",
        str(item.id),
        {
            "context": post.context,
            "item_type": "comment" if comment else "post",
            "item_id": str(item.id),
            "post_id": str(post.id),
            "author_id": str(item.author_id),
            "group_id": str(post.group_id) if post.group_id else None,
            "body": item.body,
            "links": [] if comment else [str(link["url"]) for link in post.links or []],
            "term_ids": term_ids,
            "created_at": item.created_at.isoformat(),
        },
    )


def held_since_written(item: Post | Comment) -> bool:
    """Whether ``item`` (held) has been held since it was written: it was then never announced
    (``post.created``, ``comment.created``), and its release announces it."""
    return item.moderated_at is not None and as_utc(item.moderated_at) <= as_utc(item.created_at)
