"""Registration, the owner's own view of the account, and the personal persona."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from kit.db import SessionDep
from kit.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from kit.outbox import OutboxDep
from kit.timeutil import utcnow
from services.identity import personas, verification
from services.identity.deps import CallerDep, PasswordsDep, SettingsDep
from services.identity.mail import MailerDep
from services.identity.models import Account, Persona
from services.identity.schemas import (
    AccountCreate,
    AccountVerified,
    MePublic,
    PersonalCreate,
    PersonaPublic,
    RegistrationAccepted,
    VerificationCreate,
)

router = APIRouter(prefix="/api/v1", tags=["accounts"])

ACCEPTED = (
    "If this address can be registered, a mail with a token to confirm it is on its way: send the "
    "token and the password to POST /api/v1/accounts/verification, then sign in with "
    "POST /api/v1/auth/token. An address that already has an account is left unchanged."
)
VERIFIED = "The address is confirmed and the account ready: sign in with POST /api/v1/auth/token."


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
    responses={403: {"description": "Registration is closed or the email domain is not allowed"}},
)
async def create_account(
    body: AccountCreate,
    session: SessionDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
) -> RegistrationAccepted:
    """Mails a token that confirms the address (POST /api/v1/accounts/verification); nothing
    exists until then. The answer is the same whether or not the address already had an account,
    and whether or not the handle is free (that is found out on confirming), so that
    registration cannot be used to find out who has an account."""
    email = body.email.strip().lower()
    domain = email.rsplit("@", 1)[-1]
    if settings.registration == "closed":
        raise Forbidden("Registration is closed: accounts come from an administrator or from HR.")
    if settings.registration == "domains" and domain not in {
        d.lower() for d in settings.allowed_email_domains
    }:
        raise Forbidden("Registration is open only to the organisation's email domains.")
    _check_password(body.password, settings)
    mail = await verification.register(
        session,
        settings,
        email=email,
        password_hash=await passwords.hash(body.password),
        handle=body.handle,
        display_name=body.display_name,
    )
    if mail is not None:
        background.add_task(mailer.send, mail)
    return RegistrationAccepted(detail=ACCEPTED)


@router.post(
    "/accounts/verification",
    summary="Confirm a registration's address with the mailed token",
    responses={
        400: {"description": "The token (single use, expiring) or the password is not valid"},
        409: {"description": "The address has an account already, or the handle is taken"},
    },
)
async def verify_account(
    body: VerificationCreate,
    session: SessionDep,
    passwords: PasswordsDep,
    outbox: OutboxDep,
) -> AccountVerified:
    """Creates the account and its professional persona from the registration the token names,
    if the password is the one chosen at registration. A taken handle is a 409 that leaves the
    token usable with another ``handle``."""
    registration = await verification.pending(session, body.token)
    ok = await passwords.verify(body.password, registration.password_hash if registration else None)
    if registration is None or not ok:
        raise BadRequest("The token or the password is not valid; a token works once, until it expires.")
    email = registration.email
    if await session.scalar(select(Account.id).where(Account.email == email)) is not None:
        await verification.forget(session, email)
        await session.commit()
        raise Conflict("This address has an account already: sign in, or ask an administrator.")
    handle = body.handle or registration.handle
    taken = Conflict("This handle is taken: send the token again with another handle.")
    if await session.scalar(
        select(Persona.id).where(Persona.kind == "professional", Persona.handle == handle)
    ):
        raise taken
    now = utcnow()
    account = Account(email=email, password_hash=registration.password_hash, email_verified_at=now)
    persona = Persona(
        account_id=account.id, kind="professional", handle=handle, display_name=registration.display_name
    )
    session.add(account)
    session.add(persona)
    try:
        await session.flush()
        await verification.forget(session, email)
        await outbox.publish(session, "persona.created", str(persona.id), personas.event_data(persona))
        await session.commit()
    except IntegrityError:
        await session.rollback()
        if await session.scalar(select(Account.id).where(Account.email == email)) is not None:
            raise Conflict("This address has an account already: sign in, or ask an administrator.") from None
        raise taken from None
    return AccountVerified(detail=VERIFIED, persona_id=persona.id)


@router.get("/me", summary="The signed-in persona, and its account for the professional persona (owner only)")
async def get_me(caller: CallerDep) -> MePublic:
    """Only the token's own persona: with a personal token nothing of the account or of the
    professional persona, with a professional token nothing of the personal persona."""
    persona = personas.public(caller.persona)
    if caller.persona.kind == "personal":
        return MePublic(
            context="personal",
            account_id=None,
            email=None,
            status=None,
            roles=None,
            created_at=None,
            professional=None,
            personal=persona,
        )
    account = caller.account
    return MePublic(
        context="professional",
        account_id=account.id,
        email=account.email,
        status=account.status,
        roles=account.roles,
        created_at=account.created_at,
        professional=persona,
        personal=None,
    )


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
