"""Operator commands that need no token (run on the identity host):

    python -m services.identity.manage grant-role ada@agency.example admin
    python -m services.identity.manage publish-staff
    python -m services.identity.manage create-app --name Tour --redirect-uri http://127.0.0.1/callback

use IDENTITY_DATABASE_URL like the service. ``grant-role`` is how the first administrator is
made. Moderation and records learn their staff (``admin``, ``moderator``, ``records``) from
``internal.staff.updated`` events, which these commands write to identity's outbox for the
running service's relay to send: they need the service's IDENTITY_SUBSCRIBERS as well, and say
so when no subscriber would receive them. ``publish-staff`` announces every current holder of a
staff role once, to seed moderation's and records' replicas at rollout (decisions 0032 and
0033); running it again changes nothing but the replicas' times. ``create-app`` registers an app for the
authorization-code flow (public unless ``--confidential``; decision 0035), audited with the actor
``operator``, and prints its id (and a confidential app's secret, once).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import col

from kit.db import Database
from kit.outbox import Outbox
from services.identity import administration
from services.identity.models import Account, AuditEntry, outbox_tables
from services.identity.passwords import Passwords
from services.identity.schemas import ROLES, AppCreate
from services.identity.settings import IdentitySettings


def environment_outbox(settings: IdentitySettings | None = None) -> Outbox:
    """Identity's outbox as the service's environment configures it (its subscribers): the
    commands write events with the deliveries the running service's relay then sends."""
    settings = settings or _settings()
    return Outbox(outbox_tables, settings.service_name, settings.subscribers)


def _settings() -> IdentitySettings:
    return IdentitySettings(internal_token="unused-by-these-commands")  # noqa: S106 - not used here


def staff_reaches_anyone(outbox: Outbox) -> bool:
    """Whether any subscriber of ``outbox`` receives the staff event."""
    event = administration.STAFF_EVENT
    return any(
        p == "*" or p == event or (p.endswith(".*") and event.startswith(p[:-1]))
        for subscriber in outbox.subscribers
        for p in subscriber.event_types
    )


async def grant_role(database: Database, email: str, role: str, outbox: Outbox | None = None) -> bool:
    """Gives the account ``role`` (audited, actor ``operator``) and, for a staff role, tells
    moderation and records; ``outbox`` defaults to the environment's. Returns False for an unknown
    address."""
    outbox = outbox or environment_outbox()
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
            await administration.announce_staff(session, outbox, account)
            await session.commit()
        return True


async def publish_staff(database: Database, outbox: Outbox | None = None) -> int:
    """Announces every account holding a staff role, as its professional persona; returns how
    many were announced."""
    outbox = outbox or environment_outbox()
    announced = 0
    async with database.sessionmaker() as session:
        accounts = (await session.scalars(select(Account).order_by(col(Account.id)))).all()
        for account in accounts:
            if set(account.roles) & set(administration.STAFF_ROLES):
                announced += await administration.announce_staff(session, outbox, account)
        await session.commit()
    return announced


async def create_app(
    database: Database, settings: IdentitySettings, body: AppCreate
) -> tuple[str, str | None]:
    """Registers an app as the operator; returns its id and a confidential app's secret."""
    passwords = Passwords(
        time_cost=settings.password_time_cost,
        memory_cost=settings.password_memory_cost,
        parallelism=settings.password_parallelism,
    )
    async with database.sessionmaker() as session:
        app, secret = await administration.register_app(session, None, passwords, body)
        return app.id, secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.identity.manage")
    commands = parser.add_subparsers(dest="command", required=True)
    grant = commands.add_parser("grant-role", help="give an account a role")
    grant.add_argument("email")
    grant.add_argument("role", choices=ROLES)
    commands.add_parser("publish-staff", help="announce every staff role holder to moderation and records")
    app = commands.add_parser("create-app", help="register an app for the authorization-code flow")
    app.add_argument("--name", required=True)
    app.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris")
    app.add_argument("--confidential", action="store_true", help="a server-side app with a secret")
    app.add_argument("--scope", action="append", dest="scopes", choices=("read", "write"))
    args = parser.parse_args(argv)
    settings = _settings()
    if args.command == "create-app":
        try:
            body = AppCreate(
                name=args.name,
                kind="confidential" if args.confidential else "public",
                redirect_uris=args.redirect_uris,
                scopes=args.scopes or ["read", "write"],
            )
        except ValidationError as exc:
            for error in exc.errors():
                print(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", file=sys.stderr)
            return 2
        return asyncio.run(_create_app(settings, body))
    database = Database(settings.database_url)
    outbox = environment_outbox(settings)
    staff = args.command == "publish-staff" or args.role in administration.STAFF_ROLES
    if staff and not staff_reaches_anyone(outbox):
        print(
            "No subscriber receives internal.staff.updated (IDENTITY_SUBSCRIBERS): moderation and "
            "records will not learn of staff roles until publish-staff runs with the service's "
            "environment.",
            file=sys.stderr,
        )

    async def run() -> int:
        try:
            if args.command == "publish-staff":
                count = await publish_staff(database, outbox)
                print(f"Announced {count} staff role holders.")
                return 0
            if not await grant_role(database, args.email, args.role, outbox):
                print(f"No account with the address {args.email}.", file=sys.stderr)
                return 1
            print(f"{args.email} now has the role {args.role}.")
            return 0
        finally:
            await database.dispose()

    return asyncio.run(run())


async def _create_app(settings: IdentitySettings, body: AppCreate) -> int:
    database = Database(settings.database_url)
    try:
        app_id, secret = await create_app(database, settings, body)
    finally:
        await database.dispose()
    print(app_id)
    if secret is not None:
        print(f"secret (shown once): {secret}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
