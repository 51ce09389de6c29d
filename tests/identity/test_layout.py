"""Identity's flows work without HTTP (the layout itself: tests/test_layout.py)."""

from __future__ import annotations

import uuid

from services.identity import personas
from services.identity.models import Persona
from services.identity.schemas import PersonalCreate
from tests.helpers import login, register


async def test_the_personal_persona_flow_runs_without_http(suite):
    email = await register(suite.client, "ada")
    professional = await login(suite.client, email)
    state = suite.identity.state
    async with state.database.sessionmaker() as session:
        owner = await session.get(Persona, uuid.UUID(professional["persona_id"]))
        assert owner is not None
        personal = await personas.create_personal(
            session, state.outbox, owner.account_id, PersonalCreate(handle="ada_home", display_name="Ada")
        )
    tokens = await login(suite.client, email, persona="personal")
    assert tokens["persona_id"] == str(personal.id)
    assert tokens["context"] == "personal"
