"""Redaction of an export (decision 0033, "Exports").

A redacted matter's export, and every persona's own export, names no persona but those it is
about (the custodians', or the owner's): every other persona id becomes ``person-`` and ten
hexadecimal digits of an HMAC keyed for this export alone, in authors, mentions, reactions,
members and notifications' actors, and an ``@handle`` in text becomes ``@`` and that same
pseudonym. So one person reads as one pseudonym throughout an export, and as unrelated ones in
two exports: the packages cannot be joined to name someone.

A handle in text is looked up in records' persona replica, in the item's context. One the
replica does not know (a handle since changed, a persona since erased) is masked too, with a
pseudonym of the handle itself: a name nobody can check is not left to be guessed. The counts
say how many of each kind were replaced.

A media file's line is its uploader's as a post is its author's: the uploader is replaced
(counted with ``authors``) and handles are masked in its description and file name. The file's
bytes go into the package as they are: redaction does not alter a document or a picture.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.handles import HANDLE_CHARACTERS
from services.records.models import PersonaReplica

PREFIX = "person-"
_DIGITS = 10
# As feed reads a mention: not part of a word, an address or another mention.
_HANDLE = re.compile(rf"(?<![\w@])@({HANDLE_CHARACTERS})(?![\w@])")
_LOOKUP_BATCH = 500
# The fields of a line whose text may name people by handle.
_TEXTS = ("body", "description", "filename")


def export_key(secret: str, export_id: uuid.UUID) -> bytes:
    """The key of one export's pseudonyms, derived from the deployment's internal secret: it
    is never stored, and differs from one export to the next."""
    return hmac.new(
        secret.encode(), f"records export redaction:{export_id}".encode(), hashlib.sha256
    ).digest()


class Redactor:
    """Rewrites an export's lines; ``kept`` are the personas whose ids stay. ``learn`` must
    see a page of lines before ``content`` rewrites them (it looks their handles up)."""

    def __init__(self, key: bytes, kept: Iterable[uuid.UUID | str]) -> None:
        self.key = key
        self.kept = frozenset(str(p) for p in kept)
        self.counts: Counter[str] = Counter()
        self._seen: set[str] = set()
        self._handles: dict[tuple[str, str], str | None] = {}

    def pseudonym(self, persona_id: str) -> str:
        self._seen.add(persona_id)
        return self._name(f"persona:{persona_id}")

    def _name(self, what: str) -> str:
        digest = hmac.new(self.key, what.encode(), hashlib.sha256).hexdigest()
        return PREFIX + digest[:_DIGITS]

    def _persona(self, value: Any, kind: str) -> Any:
        if value is None or str(value) in self.kept:
            return value
        self.counts[kind] += 1
        return self.pseudonym(str(value))

    def summary(self) -> dict[str, int]:
        """What was replaced, by kind, and how many distinct personas."""
        return dict(sorted({**self.counts, "personas": len(self._seen)}.items()))

    async def learn(self, session: AsyncSession, lines: Sequence[dict[str, Any]]) -> None:
        """Looks up, in the persona replica, the handles these lines' texts name."""
        wanted: dict[str, set[str]] = {}
        for line in lines:
            context = str(line.get("context"))
            for name in _TEXTS:
                text = line.get(name)
                if not text:
                    continue
                for handle in _HANDLE.findall(text):
                    key = (context, handle.lower())
                    if key not in self._handles:
                        wanted.setdefault(context, set()).add(key[1])
        for context, handles in wanted.items():
            names = sorted(handles)
            for start in range(0, len(names), _LOOKUP_BATCH):
                batch = names[start : start + _LOOKUP_BATCH]
                rows = await session.execute(
                    select(col(PersonaReplica.handle), col(PersonaReplica.id)).where(
                        col(PersonaReplica.context) == context, col(PersonaReplica.handle).in_(batch)
                    )
                )
                found = {str(handle): str(persona) for handle, persona in rows.all()}
                for handle in batch:
                    self._handles[(context, handle)] = found.get(handle)

    def _mask(self, body: str, context: str) -> str:
        def replace(match: re.Match[str]) -> str:
            handle = match.group(1).lower()
            persona = self._handles.get((context, handle))
            if persona is not None and persona in self.kept:
                return match.group(0)
            self.counts["handles"] += 1
            name = (
                self.pseudonym(persona) if persona is not None else self._name(f"handle:{context}:{handle}")
            )
            return "@" + name

        return _HANDLE.sub(replace, body)

    def content(self, line: dict[str, Any]) -> dict[str, Any]:
        """A post's, comment's or reaction's line: its author (the reacting persona for a
        reaction), its mentions and the handles in its text."""
        line = dict(line)
        line["author_id"] = self._persona(
            line.get("author_id"), "reactions" if line.get("kind") == "reaction" else "authors"
        )
        if line.get("mentions"):
            line["mentions"] = [self._persona(m, "mentions") for m in line["mentions"]]
        if line.get("body"):
            line["body"] = self._mask(line["body"], str(line.get("context")))
        return line

    def media(self, line: dict[str, Any]) -> dict[str, Any]:
        """A media file's line: its uploader, and the handles in its description and name."""
        line = dict(line)
        line["author_id"] = self._persona(line.get("author_id"), "authors")
        context = str(line.get("context"))
        for name in ("description", "filename"):
            if line.get(name):
                line[name] = self._mask(line[name], context)
        return line

    def membership(self, line: dict[str, Any]) -> dict[str, Any]:
        return {**line, "persona_id": self._persona(line.get("persona_id"), "members")}

    def notification(self, line: dict[str, Any]) -> dict[str, Any]:
        return {**line, "actor_id": self._persona(line.get("actor_id"), "actors")}
