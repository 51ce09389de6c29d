"""The gateway has no database: its process never loads a database library, not even through
kit (kit.errors renders every error without one; kit.db_errors, which needs SQLAlchemy, is
for the services)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["gateway.app", "kit.errors", "kit.middleware"])
def test_importing_it_loads_no_database_library(module):
    check = (
        f"import sys, {module}; "
        "loaded = sorted(m for m in ('sqlalchemy', 'sqlmodel', 'asyncpg', 'alembic') if m in sys.modules); "
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
