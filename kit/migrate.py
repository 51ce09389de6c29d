"""Command line for Alembic migrations: one or more apps, each a folder that holds its
``alembic.ini`` and ``migrations/``.

    python -m kit.migrate upgrade path/to/app [path/to/other ...]
    python -m kit.migrate revision path/to/app -m "add reactions"     (autogenerate)
    python -m kit.migrate check path/to/app                           (models match migrations)
    python -m kit.migrate current path/to/app

An app's database URL comes from ``<NAME>_DATABASE_URL``, NAME being its folder's name in
capitals (as the app's own settings read it), by default ``sqlite+aiosqlite:///var/<name>.db``.
A project that keeps its apps side by side calls ``main(argv, root=folder)`` from a command of
its own, so that they are named rather than given as paths.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from alembic import command

from kit.migrations import alembic_config

ACTIONS = ("upgrade", "revision", "check", "current")


def database_url(name: str) -> str:
    return os.environ.get(f"{name.upper()}_DATABASE_URL", f"sqlite+aiosqlite:///var/{name}.db")


def run(action: str, folder: Path, *, message: str = "change") -> None:
    """One of ``ACTIONS`` on the app in ``folder``."""
    name = folder.resolve().name
    config = alembic_config(folder, database_url(name))
    if action == "upgrade":
        command.upgrade(config, "head")
        print(f"{name}: migrated to head")
    elif action == "revision":
        command.revision(config, message=message, autogenerate=True)
    elif action == "check":
        command.check(config)
    else:
        command.current(config)


def main(argv: list[str] | None = None, *, root: Path | None = None, prog: str | None = None) -> int:
    """Apps are folders, or with ``root`` the names of folders under it."""
    parser = argparse.ArgumentParser(prog=prog or "python -m kit.migrate")
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("apps", nargs="+", help="app names" if root else "app folders")
    parser.add_argument("-m", "--message", default="change")
    args = parser.parse_args(argv)
    for app in args.apps:
        folder = root / app if root is not None else Path(app)
        if not (folder / "alembic.ini").exists():
            print(f"unknown app: {app}", file=sys.stderr)
            return 2
        run(args.action, folder, message=args.message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
