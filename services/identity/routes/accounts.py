"""Registration, the owner's own view of the account, and the personal persona."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Response

from services.identity import personas, verification
from services.identity.deps import (
    CallerDep,
    MailerDep,
    OutboxDep,
    PasswordsDep,
    ReadCallerDep,
    SessionDep,
    SettingsDep,
)
from services.identity.schemas import (
    AccountCreate,
    AccountVerified,
    MePublic,
    PersonalCreate,
    PersonaPublic,
    RegistrationAccepted,
    VerificationCreate,
    me_public,
    persona_public,
)

router = APIRouter(prefix="/api/v1", tags=["accounts"])

ACCEPTED = (
    "If this address can be registered, a mail with a token to confirm it is on its way: send the "
    "token and the password to POST /api/v1/accounts/verification, then sign in with "
    "POST /api/v1/auth/token. An address that already has an account is left unchanged."
)
VERIFIED = "The address is confirmed and the account ready: sign in with POST /api/v1/auth/token."


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
    mail = await verification.start(
        session,
        settings,
        passwords,
        email=body.email,
        password=body.password,
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
    persona = await verification.complete(
        session, outbox, passwords, token=body.token, password=body.password, handle=body.handle
    )
    return AccountVerified(detail=VERIFIED, persona_id=persona.id)


@router.get("/me", summary="The signed-in persona, and its account for the professional persona (owner only)")
async def get_me(caller: ReadCallerDep) -> MePublic:
    """Only the token's own persona: with a personal token nothing of the account or of the
    professional persona, with a professional token nothing of the personal persona."""
    return me_public(caller.persona, caller.account)


@router.post(
    "/me/personas",
    status_code=201,
    summary="Create the caller's personal persona",
    responses={409: {"description": "A personal persona exists already, or the handle is taken"}},
)
async def create_personal_persona(
    body: PersonalCreate, session: SessionDep, caller: CallerDep, outbox: OutboxDep, response: Response
) -> PersonaPublic:
    persona = await personas.create_personal(session, outbox, caller.account.id, body)
    response.headers["Location"] = f"/api/v1/personas/{persona.id}"
    return persona_public(persona)


@router.delete(
    "/me/personas/personal",
    status_code=204,
    summary="Erase the caller's personal persona",
    responses={404: {"description": "There is no personal persona"}},
)
async def delete_personal_persona(session: SessionDep, caller: CallerDep, outbox: OutboxDep) -> None:
    """Erases the persona; the services that hold its content remove it on the
    ``persona.erased`` event."""
    await personas.erase_personal(session, outbox, caller.account.id)
