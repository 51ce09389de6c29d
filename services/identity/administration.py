"""What administrators do: find and change accounts (status and roles), resolve which personas
belong together, register and revoke integrator clients and the apps people sign in to (the
authorization-code flow, decision 0035). Every change is written to the audit log in the same
transaction as the change itself.

Moderation learns who may moderate, and records who may use the records API, from
``internal.staff.updated``, published with every change of an account's roles: the staff roles
(``admin``, ``moderator``, ``records``) its professional persona holds now, the only persona
roles act through (decisions 0032 and 0033). Each service keeps the roles it acts on."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.errors import Forbidden, NotFound, Unprocessable
from kit.outbox import Outbox
from kit.text import LIKE_ESCAPE, like_escape
from kit.timeutil import utcnow
from services.identity import accounts, audit, tokens, webhooks
from services.identity.models import Account, App, AuditEntry, AuthorizationCode, Client, Persona
from services.identity.passwords import Passwords
from services.identity.schemas import (
    AccountAdminPublic,
    AccountAdminUpdate,
    AppCreate,
    PersonaLinkPublic,
    account_admin_public,
)
from services.identity.settings import IdentitySettings

STAFF_ROLES = ("admin", "moderator", "records")
STAFF_EVENT = "internal.staff.updated"


async def announce_staff(session: AsyncSession, outbox: Outbox, account: Account) -> bool:
    """Tells moderation and records, in the caller's transaction, which staff roles the
    account's professional persona holds now; returns False for an account without one. The
    event names the professional persona and never the account, nor the personal persona."""
    professional = await session.scalar(
        select(Persona).where(col(Persona.account_id) == account.id, col(Persona.kind) == "professional")
    )
    if professional is None:
        return False
    data = {
        "persona_id": str(professional.id),
        "context": "professional",
        "roles": sorted(r for r in set(account.roles) if r in STAFF_ROLES),
    }
    await outbox.publish(session, STAFF_EVENT, str(professional.id), data)
    return True


async def account_view(session: AsyncSession, account: Account) -> AccountAdminPublic:
    """The account as administrators see it, with its professional persona (never the
    personal one)."""
    professional = await session.scalar(
        select(Persona).where(col(Persona.account_id) == account.id, col(Persona.kind) == "professional")
    )
    return account_admin_public(account, professional)


async def find_accounts(
    session: AsyncSession, *, status: str | None, q: str | None, after: uuid.UUID | None, limit: int
) -> Sequence[Account]:
    """A page of accounts in id order, of one status and with ``q`` in the address if asked."""
    query = select(Account)
    if status:
        query = query.where(col(Account.status) == status)
    if q:
        query = query.where(col(Account.email).like(f"%{like_escape(q)}%", escape=LIKE_ESCAPE))
    if after:
        query = query.where(col(Account.id) > after)
    return (await session.scalars(query.order_by(col(Account.id)).limit(limit + 1))).all()


async def account(session: AsyncSession, account_id: uuid.UUID) -> Account:
    found = await session.get(Account, account_id)
    if found is None:
        raise NotFound("No account with this id.")
    return found


async def update_account(
    session: AsyncSession,
    outbox: Outbox,
    settings: IdentitySettings,
    admin: Principal,
    admin_account_id: uuid.UUID,
    account_id: uuid.UUID,
    body: AccountAdminUpdate,
) -> Account:
    """A status change stops new tokens at once and revokes refresh tokens (accounts.set_status);
    it needs a reason, and administrators cannot stop their own account. Every change is
    audited with its reason, and a change of roles is announced to moderation and records."""
    target = await account(session, account_id)
    if body.status is not None and body.reason is None:
        raise Unprocessable(
            "A status change needs a reason.",
            errors=[{"location": "body.reason", "message": "required with status", "code": "missing"}],
        )
    if target.id == admin_account_id and body.status not in (None, "active"):
        raise Forbidden("Administrators cannot suspend or deactivate their own account.")
    if body.status is not None and body.status != target.status:
        before = target.status
        await accounts.set_status(session, outbox, settings, target, body.status)
        audit.record(
            session,
            admin,
            f"account.{body.status}",
            account_id=target.id,
            reason=body.reason,
            before=before,
        )
    if body.roles is not None and sorted(set(body.roles)) != sorted(target.roles):
        before_roles = list(target.roles)
        target.roles = sorted(set(body.roles))
        target.updated_at = utcnow()
        audit.record(
            session,
            admin,
            "account.roles",
            account_id=target.id,
            reason=body.reason,
            before=before_roles,
            after=target.roles,
        )
        await announce_staff(session, outbox, target)
    await session.commit()
    return target


async def audit_entries(
    session: AsyncSession, *, account_id: uuid.UUID | None, before: uuid.UUID | None, limit: int
) -> Sequence[AuditEntry]:
    """A page of the audit log, newest first, about one account if asked."""
    query = select(AuditEntry)
    if account_id:
        query = query.where(col(AuditEntry.account_id) == account_id)
    if before:
        query = query.where(col(AuditEntry.id) < before)
    return (await session.scalars(query.order_by(col(AuditEntry.id).desc()).limit(limit + 1))).all()


async def resolve_persona_link(
    session: AsyncSession, admin: Principal, persona_id: uuid.UUID, reason: str
) -> PersonaLinkPublic:
    """The only way anyone but the owner can connect a personal persona to its professional
    twin. It needs a stated reason, and the audit log records who asked, about whom and why."""
    persona = await session.get(Persona, persona_id)
    if persona is None:
        raise NotFound("No persona with this id.")
    both = (await session.scalars(select(Persona).where(col(Persona.account_id) == persona.account_id))).all()
    by_kind = {p.kind: p.id for p in both}
    audit.record(
        session,
        admin,
        "persona.link_resolved",
        account_id=persona.account_id,
        reason=reason,
        persona_id=str(persona.id),
    )
    await session.commit()
    return PersonaLinkPublic(
        account_id=persona.account_id,
        professional_persona_id=by_kind["professional"],
        personal_persona_id=by_kind.get("personal"),
    )


async def create_client(
    session: AsyncSession, admin: Principal, passwords: Passwords, name: str, scopes: list[str]
) -> tuple[Client, str]:
    """A new integrator client and its secret, which only the answer shows: only its hash is kept."""
    secret = secrets.token_urlsafe(32)
    client = Client(
        id="cl_" + secrets.token_hex(12),
        name=name,
        secret_hash=await passwords.hash(secret),
        scopes=sorted(set(scopes)),
    )
    session.add(client)
    audit.record(session, admin, "client.created", client_id=client.id, scopes=client.scopes)
    await session.commit()
    return client, secret


async def find_clients(session: AsyncSession, *, after: str | None, limit: int) -> Sequence[Client]:
    """A page of integrator clients in id order."""
    query = select(Client)
    if after is not None:
        query = query.where(col(Client.id) > after)
    return (await session.scalars(query.order_by(col(Client.id)).limit(limit + 1))).all()


async def revoke_client(session: AsyncSession, admin: Principal, client_id: str) -> None:
    """Its access tokens stop working at once (identity checks the client on every request)
    and its webhook endpoints are disabled, their pending deliveries never sent."""
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFound("No client with this id.")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        audit.record(session, admin, "client.revoked", client_id=client.id)
    await webhooks.disable_client_endpoints(session, client.id)
    await session.commit()


async def register_app(
    session: AsyncSession, admin: Principal | None, passwords: Passwords, body: AppCreate
) -> tuple[App, str | None]:
    """A new app, and a confidential app's secret, which only the answer shows: only its hash is
    kept. A public app has none: it proves itself with PKCE on every sign-in. ``admin`` None is
    the operator (services/identity/manage.py)."""
    secret = secrets.token_urlsafe(32) if body.kind == "confidential" else None
    app = App(
        id="app_" + secrets.token_hex(12),
        name=body.name,
        kind=body.kind,
        redirect_uris=list(dict.fromkeys(body.redirect_uris)),
        scopes=sorted(set(body.scopes)),
        secret_hash=await passwords.hash(secret) if secret is not None else None,
    )
    session.add(app)
    audit.record(
        session,
        admin,
        "app.created",
        app_id=app.id,
        kind=app.kind,
        scopes=app.scopes,
        redirect_uris=app.redirect_uris,
    )
    await session.commit()
    return app, secret


async def find_apps(session: AsyncSession, *, after: str | None, limit: int) -> Sequence[App]:
    """A page of apps in id order, revoked ones included."""
    query = select(App)
    if after is not None:
        query = query.where(col(App.id) > after)
    return (await session.scalars(query.order_by(col(App.id)).limit(limit + 1))).all()


async def registered_app(session: AsyncSession, app_id: str) -> App:
    found = await session.get(App, app_id)
    if found is None:
        raise NotFound("No app with this id.")
    return found


async def revoke_app(session: AsyncSession, admin: Principal, app_id: str) -> None:
    """Nobody signs in to it again: every grant it holds (refresh family) is revoked and its
    codes not yet redeemed are deleted. Access tokens already issued run out within minutes
    (``access_token_seconds``)."""
    app = await registered_app(session, app_id)
    if app.revoked_at is None:
        app.revoked_at = utcnow()
        audit.record(session, admin, "app.revoked", app_id=app.id)
    await tokens.revoke_app_families(session, app.id)
    await session.execute(
        delete(AuthorizationCode).where(
            col(AuthorizationCode.app_id) == app.id, col(AuthorizationCode.used_at).is_(None)
        )
    )
    await session.commit()
