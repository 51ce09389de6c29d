"""Self-registration that proves the address (decision 0001).

Registering stores a pending ``Registration`` and mails a single-use token; only that token,
sent back with the password chosen at registration, turns it into an account. Until then
nobody can sign in with it, and it holds neither the address nor the handle. An address that
has an account already gets a notice instead, and the caller the same answer either way.

``start`` and ``complete`` are the two steps as the routes call them.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.errors import BadRequest, Conflict, Forbidden, Unprocessable
from kit.housekeeping import Retention
from kit.outbox import Outbox
from kit.timeutil import as_utc, utcnow
from services.identity import personas
from services.identity.mail import Mail
from services.identity.models import Account, Persona, RefreshToken, Registration
from services.identity.passwords import UNUSABLE_PREFIX, Passwords, unusable
from services.identity.settings import IdentitySettings
from services.identity.tokens import digest

VERIFICATION_PATH = "/api/v1/accounts/verification"
EXPIRED_KEPT = timedelta(hours=1)


async def mails_sent_recently(session: AsyncSession, email: str) -> int:
    since = utcnow() - timedelta(hours=1)
    count = await session.scalar(
        select(func.count())
        .select_from(Registration)
        .where(col(Registration.email) == email, col(Registration.created_at) > since)
    )
    return int(count or 0)


def _hours(settings: IdentitySettings) -> str:
    hours = settings.verification_token_seconds / 3600
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


def verification_mail(settings: IdentitySettings, email: str, handle: str, token: str) -> Mail:
    link = settings.verification_link.replace("{token}", token) if settings.verification_link else None
    steps = (
        f"To confirm it, open {link} and enter the password you chose.\n"
        if link
        else f"To confirm it, send this token with the password you chose: POST {VERIFICATION_PATH} "
        '{"token": "…", "password": "…"}.\n'
    )
    return Mail(
        to=email,
        about=f"the registration of @{handle}",
        subject="Confirm your address",
        body=(
            "Someone asked to register this address.\n"
            f"{steps}"
            f"Token: {token}\n"
            f"It works once, within {_hours(settings)}. If it was not you, ignore this mail: "
            "without the token and the password nothing happens."
        ),
    )


def existing_account_mail(email: str, handle: str) -> Mail:
    return Mail(
        to=email,
        about=f"the registration of @{handle}",
        subject="You already have an account",
        body=(
            "Someone asked to register this address, which already has an account; nothing was "
            "changed. Sign in as usual. If it was not you, you need do nothing."
        ),
    )


async def register(
    session: AsyncSession,
    settings: IdentitySettings,
    *,
    email: str,
    password_hash: str,
    handle: str,
    display_name: str,
) -> Mail | None:
    """Stores the registration and returns the mail to send, or None past the hourly limit.
    The same rows are written whether or not the address has an account, so the work (and
    the time it takes) says nothing about it."""
    if await mails_sent_recently(session, email) >= settings.verification_mails_per_hour:
        return None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        Registration(
            email=email,
            token_digest=digest(token),
            password_hash=password_hash,
            handle=handle,
            display_name=display_name,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.verification_token_seconds),
        )
    )
    has_account = await session.scalar(select(col(Account.id)).where(col(Account.email) == email))
    await session.commit()
    if has_account is not None:
        return existing_account_mail(email, handle)
    return verification_mail(settings, email, handle, token)


def check_open(settings: IdentitySettings, email: str) -> None:
    """Whether self-registration is open to this (normalised) address."""
    domain = email.rsplit("@", 1)[-1]
    if settings.registration == "closed":
        raise Forbidden("Registration is closed: accounts come from an administrator or from HR.")
    if settings.registration == "domains" and domain not in {
        d.lower() for d in settings.allowed_email_domains
    }:
        raise Forbidden("Registration is open only to the organisation's email domains.")


def check_password(password: str, settings: IdentitySettings) -> None:
    """The configured password policy, with a message that says what to change."""
    if len(password) < settings.password_min_length:
        problem = f"must be at least {settings.password_min_length} characters"
    elif len(password) > settings.password_max_length:
        problem = f"must be at most {settings.password_max_length} characters"
    elif not password.strip():
        problem = "must not be only spaces"
    else:
        return
    raise Unprocessable(
        "The password {problem}.",
        params={"problem": problem},
        errors=[{"location": "body.password", "message": problem, "code": "password_policy"}],
    )


async def start(
    session: AsyncSession,
    settings: IdentitySettings,
    passwords: Passwords,
    *,
    email: str,
    password: str,
    handle: str,
    display_name: str,
) -> Mail | None:
    """The first step: checks that registration is open to the address and the password's
    policy, then stores the registration (``register``); returns the mail to send, if any."""
    email = email.strip().lower()
    check_open(settings, email)
    check_password(password, settings)
    return await register(
        session,
        settings,
        email=email,
        password_hash=await passwords.hash(password),
        handle=handle,
        display_name=display_name,
    )


async def complete(
    session: AsyncSession,
    outbox: Outbox,
    passwords: Passwords,
    *,
    token: str,
    password: str,
    handle: str | None,
) -> Persona:
    """The second step: creates the account and its professional persona from the registration
    the token names, if the password is the one chosen at registration. A taken handle is a 409
    that leaves the token usable with another ``handle``."""
    registration = await pending(session, token)
    ok = await passwords.verify(password, registration.password_hash if registration else None)
    if registration is None or not ok:
        raise BadRequest("The token or the password is not valid; a token works once, until it expires.")
    email = registration.email
    if await session.scalar(select(Account.id).where(Account.email == email)) is not None:
        await forget(session, email)
        await session.commit()
        raise Conflict("This address has an account already: sign in, or ask an administrator.")
    handle = handle or registration.handle
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
        await forget(session, email)
        await outbox.publish(session, "persona.created", str(persona.id), personas.event_data(persona))
        await session.commit()
    except IntegrityError:
        await session.rollback()
        if await session.scalar(select(Account.id).where(Account.email == email)) is not None:
            raise Conflict("This address has an account already: sign in, or ask an administrator.") from None
        raise taken from None
    return persona


async def pending(session: AsyncSession, token: str) -> Registration | None:
    """The unexpired registration the token names."""
    row = await session.scalar(select(Registration).where(col(Registration.token_digest) == digest(token)))
    if row is None or as_utc(row.expires_at) <= utcnow():
        return None
    return row


async def forget(session: AsyncSession, email: str) -> None:
    """Every pending registration of the address: once it has an account, they are moot."""
    await session.execute(delete(Registration).where(col(Registration.email) == email))


def proved_by_owner(account: Account) -> bool:
    return account.email_verified_at is not None


async def drop_unproved_credentials(session: AsyncSession, account: Account) -> bool:
    """Before HR or single sign-on takes over an account whose address nobody proved (one
    registered before addresses were verified), the password it was given stops working and its
    refresh and access tokens die: whoever registered the address may not have owned it.
    Returns whether anything was dropped."""
    if proved_by_owner(account) or account.password_hash.startswith(UNUSABLE_PREFIX):
        return False
    now = utcnow()
    account.password_hash = unusable()
    account.password_changed_at = now
    account.updated_at = now
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.account_id) == account.id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return True


def retention() -> Retention:
    return Retention(
        "expired registrations",
        Registration.__table__,  # type: ignore[attr-defined]
        "expires_at",
        EXPIRED_KEPT,
    )
