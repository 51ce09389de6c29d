"""Command line for the services' migrations.

    python -m kit.migrate upgrade identity feed groups
    python -m kit.migrate revision feed -m "add reactions"     (autogenerate)
    python -m kit.migrate check identity                       (models match migrations)

Each service's database URL comes from ``<SERVICE>_DATABASE_URL`` (as the service itself reads
it), by default ``sqlite+aiosqlite:///var/<service>.db``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from alembic import command

from kit.migrations import alembic_config

SERVICES_ROOT = Path(__file__).resolve().parent.parent / "services"


def database_url(service: str) -> str:
    return os.environ.get(f"{service.upper()}_DATABASE_URL", f"sqlite+aiosqlite:///var/{service}.db")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.migrate")
    parser.add_argument("action", choices=["upgrade", "revision", "check", "current"])
    parser.add_argument("services", nargs="+")
    parser.add_argument("-m", "--message", default="change")
    args = parser.parse_args(argv)
    for service in args.services:
        folder = SERVICES_ROOT / service
        if not (folder / "alembic.ini").exists():
            print(f"unknown service: {service}", file=sys.stderr)
            return 2
        config = alembic_config(folder, database_url(service))
        if args.action == "upgrade":
            command.upgrade(config, "head")
            print(f"{service}: migrated to head")
        elif args.action == "revision":
            command.revision(config, message=args.message, autogenerate=True)
        elif args.action == "check":
            command.check(config)
        else:
            command.current(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
