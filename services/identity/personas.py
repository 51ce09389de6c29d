"""Personas and the privacy boundary between a person's two faces.

Nothing that leaves identity (a response to anyone but the owner, an event, a log line) carries
an account id, an email, or the id of the other persona of the same account; and nothing about
one persona moves because of something done to the account (docs/boundary.md): its
``updated_at`` is its own last edit, and an account-level change reaches a personal persona
only after a delay of its own (services/identity/accounts.py).
"""

from __future__ import annotations

from typing import Any

from kit.timeutil import utcnow
from services.identity.models import Persona
from services.identity.schemas import PersonaPublic

PROFESSIONAL, PERSONAL = "professional", "personal"


def public(persona: Persona) -> PersonaPublic:
    return PersonaPublic.model_validate(persona, from_attributes=True)


def event_data(persona: Persona) -> dict[str, Any]:
    """A persona as the other services see it: its own fields, never its account. The event's
    own ``time`` orders a persona's changes; ``updated_at`` is only the profile's last edit."""
    return {
        "id": str(persona.id),
        "context": persona.kind,
        "handle": persona.handle,
        "display_name": persona.display_name,
        "status": persona.status,
        "discoverable": persona.discoverable,
        "updated_at": None if persona.updated_at is None else persona.updated_at.isoformat(),
    }


def touch(persona: Persona) -> None:
    """Marks an edit of the persona's own profile (by its owner, or by HR for a professional
    one). Nothing else may move ``updated_at``."""
    persona.updated_at = utcnow()
