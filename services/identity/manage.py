"""Operator commands that need no token (run on the identity host):

    python -m services.identity.manage grant-role ada@agency.example admin

uses IDENTITY_DATABASE_URL like the service. This is how the first administrator is made.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy import select
from sqlmodel import col

from kit.db import Database
from services.identity.models import Account, AuditEntry
from services.identity.settings import IdentitySettings

ROLES = ("admin", "moderator", "communications")


async def grant_role(database: Database, email: str, role: str) -> bool:
    async with database.sessionmaker() as session:
        account = await session.scalar(select(Account).where(col(Account.email) == email.strip().lower()))
        if account is None:
            return False
        if role not in account.roles:
            account.roles = sorted({*account.roles, role})
            session.add(
                AuditEntry(
                    actor="operator", action="account.roles", account_id=account.id, details={"granted": role}
                )
            )
            await session.commit()
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.identity.manage")
    commands = parser.add_subparsers(dest="command", required=True)
    grant = commands.add_parser("grant-role", help="give an account a role")
    grant.add_argument("email")
    grant.add_argument("role", choices=ROLES)
    args = parser.parse_args(argv)
    settings = IdentitySettings(internal_token="unused-by-this-command")  # noqa: S106 - not used here
    database = Database(settings.database_url)

    async def run() -> bool:
        try:
            return await grant_role(database, args.email, args.role)
        finally:
            await database.dispose()

    if not asyncio.run(run()):
        print(f"No account with the address {args.email}.", file=sys.stderr)
        return 1
    print(f"{args.email} now has the role {args.role}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
