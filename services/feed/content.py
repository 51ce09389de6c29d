"""What a post's text refers to: ``@handle`` mentions and ``#tag`` tags."""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any

from sqlalchemy import exists, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.handles import HANDLE_CHARACTERS
from services.feed.models import Follow, PersonaReplica

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
