"""Identity's request dependencies: everything a route takes from the request or the app's
state (settings, keys, the password hasher, the mailer, the single sign-on provider, the calls
to media, the database session and outbox, and who is calling: a persona, an administrator, a
webhook owner or a SCIM client) comes from here, so routes never read ``request.app.state``
themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.media import Media
from domain.principal import NOTICES_SCOPE, CurrentPersona, CurrentPrincipal, Principal
from kit.db import Database, ReadSessionDep, SessionDep
from kit.errors import Forbidden, Unauthorized
from kit.outbox import OutboxDep
from kit.timeutil import as_utc
from kit.tokens import TokenVerifier, bearer_token
from services.identity import clients, endpoints, personas, scim
from services.identity.endpoints import Owner
from services.identity.keys import KeyRing
from services.identity.mail import Mailer
from services.identity.models import Account, Persona
from services.identity.oidc import ExternalProvider
from services.identity.passwords import Passwords
from services.identity.scim import ScimError
from services.identity.settings import IdentitySettings

__all__ = [
    "AdminDep",
    "Caller",
    "CallerDep",
    "ExternalProviderDep",
    "KeysDep",
    "MailerDep",
    "MediaDep",
    "OutboxDep",
    "PasswordsDep",
    "ReadCallerDep",
    "ScimBaseDep",
    "SessionDep",
    "SettingsDep",
    "WebhookOwnerDep",
    "refuse_notices_tokens",
    "scim_client",
]


async def _settings(request: Request) -> IdentitySettings:
    settings: IdentitySettings = request.app.state.settings
    return settings


async def _keys(request: Request) -> KeyRing:
    keys: KeyRing = request.app.state.keys
    return keys


async def _passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


async def _mailer(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


async def _external_provider(request: Request) -> ExternalProvider | None:
    """The trusted single sign-on provider, when one is configured."""
    provider: ExternalProvider | None = request.app.state.external_provider
    return provider


async def _media(request: Request) -> Media:
    """The calls to media (decision 0036), through the app's HTTP client."""
    settings: IdentitySettings = request.app.state.settings
    client: httpx.AsyncClient = request.app.state.http_client
    return Media(
        client,
        settings.media_url,
        settings.internal_token.get_secret_value(),
        settings.media_timeout_seconds,
    )


SettingsDep = Annotated[IdentitySettings, Depends(_settings)]
MediaDep = Annotated[Media, Depends(_media)]
KeysDep = Annotated[KeyRing, Depends(_keys)]
PasswordsDep = Annotated[Passwords, Depends(_passwords)]
MailerDep = Annotated[Mailer, Depends(_mailer)]
ExternalProviderDep = Annotated[ExternalProvider | None, Depends(_external_provider)]


async def refuse_notices_tokens(request: Request, principal: Principal) -> None:
    """Identity's check of every token (``ServiceSpec.principal_check``): a ``notices`` token,
    which is all a persona held by moderation can get, opens nothing here. It is for reading
    notices and appealing at moderation; the profile, the directory, ``/me``, administration
    and webhooks all need a persona that is not held."""
    if NOTICES_SCOPE in principal.scopes:
        raise Forbidden("A notices token only reads the persona's notices.", slug="notices-only")


@dataclass
class Caller:
    principal: Principal
    persona: Persona
    account: Account

    def holds_role(self, role: str) -> bool:
        """The account holds ``role`` and uses it through its professional persona, the only
        one a role is exercised through."""
        return (
            self.persona.kind == "professional"
            and role in self.account.roles
            and self.principal.has_role(role)
        )


async def _caller(principal: CurrentPersona, session: SessionDep) -> Caller:
    return await caller_of(principal, session)


async def _read_caller(principal: CurrentPersona, session: ReadSessionDep) -> Caller:
    caller = await caller_of(principal, session)
    # Its connection goes back to the pool now (the session opens another if the route reads
    # through it again): a route that goes on to read on a raw pool, as people search does,
    # would otherwise hold two connections of the server's at once.
    await session.close()
    return caller


async def caller_of(principal: Principal, session: AsyncSession) -> Caller:
    """The token's persona and account, both still active, the token newer than the last
    password change: identity checks its own state on every request."""
    # One statement for both (every request of identity's makes it).
    found = (
        await session.execute(
            select(Persona, Account)
            .join(Account, col(Account.id) == col(Persona.account_id))
            .where(col(Persona.id) == principal.persona_id)
        )
    ).first()
    if found is None:
        raise Unauthorized("The token's persona no longer exists.")
    persona, account = found
    if personas.effective_status(persona) != "active" or persona.kind != principal.context:
        raise Unauthorized("The token's persona no longer exists.")
    if account.status != "active":
        raise Unauthorized("The account is not active.")
    if principal.issued_at + 1 < as_utc(account.password_changed_at).timestamp():
        raise Unauthorized("The token was issued before the password was changed.")
    return Caller(principal, persona, account)


CallerDep = Annotated[Caller, Depends(_caller)]
# The same, for a route that only reads (with ``kit.db.ReadSessionDep``): its persona and
# account are not to be changed.
ReadCallerDep = Annotated[Caller, Depends(_read_caller)]


async def _admin(caller: CallerDep) -> Caller:
    if not caller.holds_role("admin"):
        raise Forbidden("This operation is for administrators.")
    return caller


AdminDep = Annotated[Caller, Depends(_admin)]


async def _webhook_owner(principal: CurrentPrincipal, session: SessionDep) -> Owner:
    """Who manages webhooks with this token (endpoints.owner_of)."""
    return await endpoints.owner_of(session, principal)


WebhookOwnerDep = Annotated[Owner, Depends(_webhook_owner)]


async def scim_client(request: Request) -> Principal:
    """The SCIM router's guard: an active integrator client's token with the ``scim`` scope,
    refused in SCIM's own error format."""
    verifier: TokenVerifier[Principal] = request.app.state.verifier
    try:
        principal = await verifier.verify(bearer_token(request))
    except Unauthorized as exc:
        raise ScimError(401, exc.detail) from None
    if principal.client_id is None or "scim" not in principal.scopes:
        raise ScimError(403, "SCIM needs an integrator client's token with the scim scope.")
    database: Database = request.app.state.database
    async with database.read_sessionmaker() as session:
        if not await clients.is_active(session, principal):
            raise ScimError(401, "The client has been revoked.")
    request.state.principal = principal
    return principal


async def _scim_base(settings: SettingsDep) -> str:
    """Where SCIM's resources are, as clients name them (scim.base_url)."""
    return scim.base_url(settings.public_url)


ScimBaseDep = Annotated[str, Depends(_scim_base)]
