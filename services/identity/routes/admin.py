"""Administration: accounts, roles, integrator clients, the audit log, and the one audited
way to resolve which personas belong together."""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select
from sqlmodel import col

from kit.db import SessionDep
from kit.errors import Forbidden, NotFound, Unprocessable
from kit.outbox import OutboxDep
from kit.pagination import Cursor, Limit, Page, decode_cursor, decode_id_cursor, paginate
from kit.text import LIKE_ESCAPE, like_escape
from kit.timeutil import utcnow
from services.identity import accounts, audit, webhooks
from services.identity.deps import Caller, CallerDep, PasswordsDep, SettingsDep
from services.identity.models import Account, AuditEntry, Client, Persona
from services.identity.schemas import (
    AccountAdminPublic,
    AccountAdminUpdate,
    AuditEntryPublic,
    ClientCreate,
    ClientCreated,
    ClientPublic,
    PersonaLinkPublic,
    PersonaLinkRequest,
    PersonaSummary,
)


async def _admin(caller: CallerDep) -> Caller:
    if not caller.holds_role("admin"):
        raise Forbidden("This operation is for administrators.")
    return caller


AdminDep = Annotated[Caller, Depends(_admin)]
router = APIRouter(
    prefix="/api/v1/admin",
    tags=["administration"],
    responses={403: {"description": "Not an administrator"}},
)


async def _public(session: SessionDep, account: Account) -> AccountAdminPublic:
    professional = await session.scalar(
        select(Persona).where(col(Persona.account_id) == account.id, col(Persona.kind) == "professional")
    )
    return AccountAdminPublic(
        id=account.id,
        email=account.email,
        status=account.status,
        roles=account.roles,
        provisioned=account.provisioned,
        created_at=account.created_at,
        professional=PersonaSummary.model_validate(professional, from_attributes=True)
        if professional
        else None,
    )


@router.get("/accounts", summary="List accounts")
async def list_accounts(
    request: Request,
    response: Response,
    session: SessionDep,
    admin: AdminDep,
    status: Annotated[Literal["active", "suspended", "deactivated"] | None, Query()] = None,
    q: Annotated[
        str | None, Query(min_length=2, max_length=100, description="Part of an email address")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[AccountAdminPublic]:
    after = decode_id_cursor("admin-accounts", cursor)
    query = select(Account)
    if status:
        query = query.where(col(Account.status) == status)
    if q:
        query = query.where(col(Account.email).like(f"%{like_escape(q)}%", escape=LIKE_ESCAPE))
    if after:
        query = query.where(col(Account.id) > after)
    rows = (await session.scalars(query.order_by(col(Account.id)).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope="admin-accounts", key=lambda a: [str(a.id)])
    return Page[AccountAdminPublic](
        items=[await _public(session, a) for a in page.items], next_cursor=page.next_cursor
    )


async def _account(session: SessionDep, account_id: uuid.UUID) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound("No account with this id.")
    return account


@router.get(
    "/accounts/{account_id}", summary="An account", responses={404: {"description": "No such account"}}
)
async def get_account(account_id: uuid.UUID, session: SessionDep, admin: AdminDep) -> AccountAdminPublic:
    return await _public(session, await _account(session, account_id))


@router.patch(
    "/accounts/{account_id}",
    summary="Suspend, reactivate or deactivate an account, or change its roles",
    responses={404: {"description": "No such account"}, 422: {"description": "A reason is missing"}},
)
async def update_account(
    account_id: uuid.UUID,
    body: AccountAdminUpdate,
    session: SessionDep,
    admin: AdminDep,
    settings: SettingsDep,
    outbox: OutboxDep,
) -> AccountAdminPublic:
    """A status change stops new tokens at once and revokes refresh tokens; existing access
    tokens fail at identity at once and at the other services once the change reaches them.
    Every change is written to the audit log, with its reason."""
    account = await _account(session, account_id)
    if body.status is not None and body.reason is None:
        raise Unprocessable(
            "A status change needs a reason.",
            errors=[{"location": "body.reason", "message": "required with status", "code": "missing"}],
        )
    if account.id == admin.account.id and body.status not in (None, "active"):
        raise Forbidden("Administrators cannot suspend or deactivate their own account.")
    if body.status is not None and body.status != account.status:
        before = account.status
        await accounts.set_status(session, outbox, settings, account, body.status)
        audit.record(
            session,
            admin.principal,
            f"account.{body.status}",
            account_id=account.id,
            reason=body.reason,
            before=before,
        )
    if body.roles is not None and sorted(set(body.roles)) != sorted(account.roles):
        before_roles = list(account.roles)
        account.roles = sorted(set(body.roles))
        account.updated_at = utcnow()
        audit.record(
            session,
            admin.principal,
            "account.roles",
            account_id=account.id,
            reason=body.reason,
            before=before_roles,
            after=account.roles,
        )
    await session.commit()
    return await _public(session, account)


@router.get("/audit", summary="The audit log, newest first")
async def list_audit_entries(
    request: Request,
    response: Response,
    session: SessionDep,
    admin: AdminDep,
    account_id: uuid.UUID | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[AuditEntryPublic]:
    before = decode_id_cursor("audit", cursor)
    query = select(AuditEntry)
    if account_id:
        query = query.where(col(AuditEntry.account_id) == account_id)
    if before:
        query = query.where(col(AuditEntry.id) < before)
    rows = (await session.scalars(query.order_by(col(AuditEntry.id).desc()).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope="audit", key=lambda e: [str(e.id)])
    return Page[AuditEntryPublic](
        items=[AuditEntryPublic.model_validate(e, from_attributes=True) for e in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/persona-links",
    summary="Resolve which account and personas a persona belongs to (audited)",
    responses={404: {"description": "No such persona"}},
)
async def resolve_persona_link(
    body: PersonaLinkRequest, session: SessionDep, admin: AdminDep
) -> PersonaLinkPublic:
    """The only way anyone but the owner can connect a personal persona to its professional
    twin. It needs a stated reason, and the audit log records who asked, about whom and why."""
    persona = await session.get(Persona, body.persona_id)
    if persona is None:
        raise NotFound("No persona with this id.")
    both = (await session.scalars(select(Persona).where(col(Persona.account_id) == persona.account_id))).all()
    by_kind = {p.kind: p.id for p in both}
    audit.record(
        session,
        admin.principal,
        "persona.link_resolved",
        account_id=persona.account_id,
        reason=body.reason,
        persona_id=str(persona.id),
    )
    await session.commit()
    return PersonaLinkPublic(
        account_id=persona.account_id,
        professional_persona_id=by_kind["professional"],
        personal_persona_id=by_kind.get("personal"),
    )


@router.post("/clients", status_code=201, summary="Register an integrator client")
async def create_client(
    body: ClientCreate, session: SessionDep, admin: AdminDep, passwords: PasswordsDep
) -> ClientCreated:
    """The secret is shown once, in this response."""
    secret = secrets.token_urlsafe(32)
    client = Client(
        id="cl_" + secrets.token_hex(12),
        name=body.name,
        secret_hash=await passwords.hash(secret),
        scopes=sorted(set(body.scopes)),
    )
    session.add(client)
    audit.record(session, admin.principal, "client.created", client_id=client.id, scopes=client.scopes)
    await session.commit()
    return ClientCreated(
        client_id=client.id,
        name=client.name,
        scopes=client.scopes,
        created_at=client.created_at,
        client_secret=secret,
    )


@router.get("/clients", summary="List integrator clients")
async def list_clients(
    request: Request,
    response: Response,
    session: SessionDep,
    admin: AdminDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ClientPublic]:
    after = decode_cursor("clients", cursor, arity=1)
    query = select(Client)
    if after:
        query = query.where(col(Client.id) > str(after[0]))
    rows = (await session.scalars(query.order_by(col(Client.id)).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope="clients", key=lambda c: [c.id])
    return Page[ClientPublic](
        items=[
            ClientPublic(
                client_id=c.id, name=c.name, scopes=c.scopes, created_at=c.created_at, revoked_at=c.revoked_at
            )
            for c in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.delete(
    "/clients/{client_id}",
    status_code=204,
    summary="Revoke an integrator client",
    responses={404: {"description": "No such client"}},
)
async def revoke_client(
    client_id: Annotated[str, Path(max_length=40)], session: SessionDep, admin: AdminDep
) -> None:
    """Its access tokens stop working at once (identity checks the client on every request)
    and its webhook endpoints are disabled, their pending deliveries never sent."""
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFound("No client with this id.")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        audit.record(session, admin.principal, "client.revoked", client_id=client.id)
    await webhooks.disable_client_endpoints(session, client.id)
    await session.commit()
