"""Identity keeps the service layout: route modules are thin and import no other route module
nor the app's state, and the flows they call work without HTTP."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

from services.identity import personas
from services.identity.models import Persona
from services.identity.schemas import PersonalCreate
from tests.helpers import login, register

ROUTES = Path(__file__).parents[2] / "services" / "identity" / "routes"


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_route_modules_import_no_other_route_module_nor_the_app_state():
    modules = [p for p in ROUTES.glob("*.py") if p.name != "__init__.py"]
    assert modules
    for path in modules:
        others = {n for n in _imported(path) if n.startswith("services.identity.routes")}
        assert not others, (path.name, others)
        assert "app.state" not in path.read_text(), path.name


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
