"""Registration, the owner's own view of the account, and the personal persona."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from kit.db import SessionDep
from kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from kit.outbox import OutboxDep
from services.identity import personas
from services.identity.deps import CallerDep, PasswordsDep, SettingsDep
from services.identity.models import Account, Persona
from services.identity.schemas import (
    AccountCreate,
    MePublic,
    PersonalCreate,
    PersonaPublic,
    RegistrationAccepted,
)

router = APIRouter(prefix="/api/v1", tags=["accounts"])

ACCEPTED = (
    "If this address can be registered, the account is ready: sign in with "
    "POST /api/v1/auth/token. An address that already has an account is left unchanged."
)


def _check_password(password: str, settings: SettingsDep) -> None:
    if len(password) < settings.password_min_length:
        problem = f"must be at least {settings.password_min_length} characters"
    elif len(password) > settings.password_max_length:
        problem = f"must be at most {settings.password_max_length} characters"
    elif not password.strip():
        problem = "must not be only spaces"
    else:
        return
    raise Unprocessable(
        f"The password {problem}.",
        errors=[{"location": "body.password", "message": problem, "code": "password_policy"}],
    )


@router.post(
    "/accounts",
    status_code=202,
    summary="Register an account with its professional persona",
    responses={
        403: {"description": "Registration is closed or the email domain is not allowed"},
        409: {"description": "The handle is taken"},
    },
)
async def create_account(
    body: AccountCreate,
    session: SessionDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
    outbox: OutboxDep,
) -> RegistrationAccepted:
    """The answer is the same whether or not the address already had an account, so that
    registration cannot be used to find out who has one."""
    email = body.email.strip().lower()
    domain = email.rsplit("@", 1)[-1]
    if settings.registration == "closed":
        raise Forbidden("Registration is closed: accounts come from an administrator or from HR.")
    if settings.registration == "domains" and domain not in {
        d.lower() for d in settings.allowed_email_domains
    }:
        raise Forbidden("Registration is open only to the organisation's email domains.")
    _check_password(body.password, settings)
    if await session.scalar(
        select(Persona.id).where(Persona.kind == "professional", Persona.handle == body.handle)
    ):
        raise Conflict("This handle is taken.")
    password_hash = await passwords.hash(body.password)
    if await session.scalar(select(Account.id).where(Account.email == email)) is not None:
        return RegistrationAccepted(detail=ACCEPTED)
    account = Account(email=email, password_hash=password_hash)
    persona = Persona(
        account_id=account.id, kind="professional", handle=body.handle, display_name=body.display_name
    )
    session.add(account)
    session.add(persona)
    try:
        await session.flush()
        await outbox.publish(session, "persona.created", str(persona.id), personas.event_data(persona))
        await session.commit()
    except IntegrityError:
        await session.rollback()
        if await session.scalar(select(Account.id).where(Account.email == email)) is not None:
            return RegistrationAccepted(detail=ACCEPTED)
        raise Conflict("This handle is taken.") from None
    return RegistrationAccepted(detail=ACCEPTED)


async def _me(session: SessionDep, caller: CallerDep) -> MePublic:
    account = caller.account
    professional = await session.scalar(
        select(Persona).where(Persona.account_id == account.id, Persona.kind == "professional")
    )
    personal = await session.scalar(
        select(Persona).where(Persona.account_id == account.id, Persona.kind == "personal")
    )
    assert professional is not None
    return MePublic(
        account_id=account.id,
        email=account.email,
        status=account.status,
        roles=account.roles,
        created_at=account.created_at,
        professional=personas.public(professional),
        personal=personas.public(personal) if personal is not None and personal.status == "active" else None,
    )


@router.get("/me", summary="The caller's account and both of its personas (owner only)")
async def get_me(session: SessionDep, caller: CallerDep) -> MePublic:
    return await _me(session, caller)


@router.post(
    "/me/personas",
    status_code=201,
    summary="Create the caller's personal persona",
    responses={409: {"description": "A personal persona exists already, or the handle is taken"}},
)
async def create_personal_persona(
    body: PersonalCreate, session: SessionDep, caller: CallerDep, outbox: OutboxDep, response: Response
) -> PersonaPublic:
    existing = await session.scalar(
        select(Persona).where(Persona.account_id == caller.account.id, Persona.kind == "personal")
    )
    if existing is not None:
        raise Conflict("This account has a personal persona already.")
    if await session.scalar(
        select(Persona.id).where(Persona.kind == "personal", Persona.handle == body.handle)
    ):
        raise Conflict("This handle is taken.")
    persona = Persona(account_id=caller.account.id, kind="personal", **body.model_dump())
    session.add(persona)
    try:
        await session.flush()
        await outbox.publish(session, "persona.created", str(persona.id), personas.event_data(persona))
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict("A personal persona exists already, or the handle is taken.") from None
    response.headers["Location"] = f"/api/v1/personas/{persona.id}"
    return personas.public(persona)


@router.delete(
    "/me/personas/personal",
    status_code=204,
    summary="Erase the caller's personal persona",
    responses={404: {"description": "There is no personal persona"}},
)
async def delete_personal_persona(session: SessionDep, caller: CallerDep, outbox: OutboxDep) -> None:
    """Erases the persona; the services that hold its content remove it on the
    ``persona.erased`` event."""
    persona = await session.scalar(
        select(Persona).where(Persona.account_id == caller.account.id, Persona.kind == "personal")
    )
    if persona is None:
        raise NotFound("There is no personal persona.")
    await outbox.publish(
        session, "persona.erased", str(persona.id), {"id": str(persona.id), "context": "personal"}
    )
    await session.delete(persona)
    await session.commit()
