"""Administration: accounts, roles, integrator clients, the apps people sign in to, the audit
log, and the one audited way to resolve which personas belong together
(services/identity/administration.py holds the rules)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_cursor, decode_id_cursor, paginate
from services.identity import administration
from services.identity.deps import AdminDep, OutboxDep, PasswordsDep, SessionDep, SettingsDep
from services.identity.schemas import (
    AccountAdminPublic,
    AccountAdminUpdate,
    AppCreate,
    AppCreated,
    AppPublic,
    AuditEntryPublic,
    ClientCreate,
    ClientCreated,
    ClientPublic,
    PersonaLinkPublic,
    PersonaLinkRequest,
    app_public,
    audit_entry_public,
    client_public,
)

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["administration"],
    responses={403: {"description": "Not an administrator"}},
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
    rows = await administration.find_accounts(session, status=status, q=q, after=after, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope="admin-accounts", key=lambda a: [str(a.id)])
    return Page[AccountAdminPublic](
        items=[await administration.account_view(session, a) for a in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/accounts/{account_id}", summary="An account", responses={404: {"description": "No such account"}}
)
async def get_account(account_id: uuid.UUID, session: SessionDep, admin: AdminDep) -> AccountAdminPublic:
    return await administration.account_view(session, await administration.account(session, account_id))


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
    account = await administration.update_account(
        session, outbox, settings, admin.principal, admin.account.id, account_id, body
    )
    return await administration.account_view(session, account)


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
    rows = await administration.audit_entries(session, account_id=account_id, before=before, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope="audit", key=lambda e: [str(e.id)])
    return Page[AuditEntryPublic](
        items=[audit_entry_public(e) for e in page.items], next_cursor=page.next_cursor
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
    return await administration.resolve_persona_link(session, admin.principal, body.persona_id, body.reason)


@router.post("/clients", status_code=201, summary="Register an integrator client")
async def create_client(
    body: ClientCreate, session: SessionDep, admin: AdminDep, passwords: PasswordsDep
) -> ClientCreated:
    """The secret is shown once, in this response."""
    client, secret = await administration.create_client(
        session, admin.principal, passwords, body.name, list(body.scopes)
    )
    return ClientCreated(**client_public(client).model_dump(), client_secret=secret)


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
    rows = await administration.find_clients(session, after=str(after[0]) if after else None, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope="clients", key=lambda c: [c.id])
    return Page[ClientPublic](items=[client_public(c) for c in page.items], next_cursor=page.next_cursor)


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
    await administration.revoke_client(session, admin.principal, client_id)


AppId = Annotated[str, Path(max_length=40)]


@router.post(
    "/apps",
    status_code=201,
    summary="Register an app that signs people in (authorization code with PKCE)",
    responses={422: {"description": "A redirect URI, kind or scope that is not accepted"}},
)
async def register_app(
    body: AppCreate, session: SessionDep, admin: AdminDep, passwords: PasswordsDep
) -> AppCreated:
    """A confidential app's secret is shown once, in this response. Redirect URIs are https, or
    http on 127.0.0.1, [::1] or localhost, or a private-use scheme with a dot (RFC 8252 §7.1);
    never with a fragment or a wildcard."""
    app, secret = await administration.register_app(session, admin.principal, passwords, body)
    return AppCreated(**app_public(app).model_dump(), client_secret=secret)


@router.get("/apps", summary="List apps")
async def list_apps(
    request: Request,
    response: Response,
    session: SessionDep,
    admin: AdminDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[AppPublic]:
    after = decode_cursor("apps", cursor, arity=1)
    rows = await administration.find_apps(session, after=str(after[0]) if after else None, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope="apps", key=lambda a: [a.id])
    return Page[AppPublic](items=[app_public(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/apps/{app_id}", summary="An app", responses={404: {"description": "No such app"}})
async def get_app(app_id: AppId, session: SessionDep, admin: AdminDep) -> AppPublic:
    return app_public(await administration.registered_app(session, app_id))


@router.delete(
    "/apps/{app_id}",
    status_code=204,
    summary="Revoke an app",
    responses={404: {"description": "No such app"}},
)
async def revoke_app(app_id: AppId, session: SessionDep, admin: AdminDep) -> None:
    """Every grant it holds is revoked and its codes not yet redeemed are void; access tokens
    already issued run out within minutes."""
    await administration.revoke_app(session, admin.principal, app_id)
