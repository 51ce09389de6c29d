"""Every service keeps the layout of docs/layout.md: the same modules in each, and route
modules that import no other route module nor read the app's state (dependencies come from
the service's ``deps.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).parents[1] / "services"
NAMES = ["identity", "feed", "groups", "moderation", "records", "media"]


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("service", NAMES)
def test_the_service_has_the_layouts_modules(service):
    folder = SERVICES / service
    missing = [
        m
        for m in ("app.py", "settings.py", "deps.py", "models.py", "schemas.py")
        if not (folder / m).exists()
    ]
    assert not missing, missing


@pytest.mark.parametrize("service", NAMES)
def test_route_modules_import_no_other_route_module_nor_the_app_state(service):
    modules = [p for p in (SERVICES / service / "routes").glob("*.py") if p.name != "__init__.py"]
    assert modules
    for path in modules:
        others = {n for n in _imported(path) if n.startswith(f"services.{service}.routes")}
        assert not others, (path.name, others)
        assert "app.state" not in path.read_text(), path.name
