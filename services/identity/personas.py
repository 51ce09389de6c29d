"""Personas and the privacy boundary between a person's two faces.

Nothing that leaves identity (a response to anyone but the owner, an event, a log line) carries
an account id, an email, or the id of the other persona of the same account.
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
    """A persona as the other services see it: its own fields, never its account."""
    return {
        "id": str(persona.id),
        "context": persona.kind,
        "handle": persona.handle,
        "display_name": persona.display_name,
        "status": persona.status,
        "discoverable": persona.discoverable,
        "updated_at": persona.updated_at.isoformat(),
    }


def touch(persona: Persona) -> None:
    persona.updated_at = utcnow()
