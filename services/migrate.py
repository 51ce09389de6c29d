"""``python -m services.migrate``: the services' migrations, each service named by its folder.

    python -m services.migrate upgrade identity feed groups
    python -m services.migrate revision feed -m "add reactions"     (autogenerate)
    python -m services.migrate check identity                       (models match migrations)

Each service's database URL comes from ``<SERVICE>_DATABASE_URL`` (as the service itself reads
it), by default ``sqlite+aiosqlite:///var/<service>.db`` (``kit.migrate``).
"""

from __future__ import annotations

from pathlib import Path

from kit import migrate

SERVICES_ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    return migrate.main(argv, root=SERVICES_ROOT, prog="python -m services.migrate")


if __name__ == "__main__":
    raise SystemExit(main())
