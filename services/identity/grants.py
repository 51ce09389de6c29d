"""Signing in: the OAuth 2.0 grants the token endpoint accepts (password, refresh token,
client credentials, and the exchange of a single sign-on ID token), each ending in our own
tokens, and the errors they answer with (RFC 6749 §5.2).

A persona held by moderation signs in only with ``scope=notices`` (decision 0032): its token
carries that scope and no role, moderation takes it on the persona's notices alone, and every
other check refuses it (identity's own, and feed's and groups', which see the persona
suspended)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import NOTICES_SCOPE
from kit.errors import APIError, TooManyRequests
from services.identity import oidc, personas, throttle, tokens
from services.identity.keys import KeyRing
from services.identity.models import Account, Client, Persona
from services.identity.oidc import ExternalProvider, ExternalTokenError
from services.identity.passwords import Passwords
from services.identity.schemas import TokenResponse
from services.identity.settings import IdentitySettings

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN, not a secret


class OAuthError(APIError):
    """An RFC 6749 §5.2 error, carried in a problem document's ``error`` member."""

    status, title, slug = 400, "Bad Request", "oauth"

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description, extra={"error": error, "error_description": description})
        self.status = status
        if status == 401:
            self.title = "Unauthorized"
            self.headers["WWW-Authenticate"] = 'Basic realm="token"'


def invalid_grant() -> OAuthError:
    return OAuthError("invalid_grant", "The credentials or the refresh token are not valid.")


def unsupported_grant() -> OAuthError:
    return OAuthError(
        "unsupported_grant_type", f"Supported: password, refresh_token, client_credentials, {TOKEN_EXCHANGE}."
    )


def _persona_scope(persona: Persona, scope: str | None) -> str:
    """The scope of the persona's token: none (the persona's whole reach, as ever) for an active
    persona, ``notices`` for a persona held by moderation that asks for exactly that. Anything
    else is refused as a suspended persona always was. ``notices`` asked for an active persona
    is refused too, with its own error: only whoever just proved the password learns that the
    persona is not held."""
    asked = set((scope or "").split())
    if personas.effective_status(persona) == "active":
        if NOTICES_SCOPE in asked:
            raise OAuthError("invalid_scope", "The notices scope is only for a suspended persona.")
        return ""
    if persona.moderation_hold and asked == {NOTICES_SCOPE}:
        return NOTICES_SCOPE
    raise OAuthError("invalid_request", f"This account has no {persona.kind} persona.")


async def _issue(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    account: Account,
    kind: str,
    family_id: uuid.UUID | None = None,
    scope: str | None = None,
) -> TokenResponse:
    """An access token for the account's persona of ``kind`` and a refresh token (of a new
    family, or of ``family_id`` when one is rotated)."""
    persona = await tokens.persona_of_kind(session, account.id, kind)
    if persona is None:
        raise OAuthError("invalid_request", f"This account has no {kind} persona.")
    granted = _persona_scope(persona, scope)
    access = tokens.mint_access_token(
        keys,
        settings,
        subject=str(persona.id),
        context=persona.kind,
        roles=[] if granted else account.roles,
        scope=granted,
    )
    refresh = await tokens.issue_refresh_token(session, settings, account, family_id)
    await session.commit()
    return TokenResponse(
        access_token=access,
        expires_in=settings.access_token_seconds,
        refresh_token=refresh,
        scope=granted,
        persona_id=persona.id,
        context=persona.kind,
    )


async def password_grant(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    passwords: Passwords,
    *,
    address: str,
    username: str | None,
    password: str | None,
    persona: str | None,
    scope: str | None = None,
) -> TokenResponse:
    """The email and password of an active account, from the client ``address``; failures
    count towards the locks of services/identity/throttle.py."""
    if not username or password is None:
        raise OAuthError("invalid_request", "username and password are required.")
    keys_ = throttle.keys_for(username, address)
    wait = await throttle.retry_after(session, keys_)
    if wait is not None:
        raise TooManyRequests("Too many failed sign-ins; try again later.", retry_after=wait)
    account = await session.scalar(select(Account).where(Account.email == username.strip().lower()))  # type: ignore[arg-type]
    ok = await passwords.verify(password, account.password_hash if account else None)
    if not ok or account is None or account.status != "active":
        await throttle.record_failure(session, keys_, settings)
        raise invalid_grant()
    if await throttle.account_locked(session, keys_):
        raise invalid_grant()  # a distributed attack locked the account: say nothing more
    await throttle.record_success(session, keys_)
    return await _issue(session, settings, keys, account, persona or "professional", scope=scope)


async def refresh_grant(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    *,
    refresh_token: str | None,
    persona: str | None,
    scope: str | None = None,
) -> TokenResponse:
    """A refresh token, rotated on every use (a reused one revokes its whole family), optionally
    switching to the account's other persona."""
    if not refresh_token:
        raise OAuthError("invalid_request", "refresh_token is required.")
    row = await tokens.use_refresh_token(session, refresh_token)
    if row is None:
        await session.commit()  # keeps a family revocation
        raise invalid_grant()
    account = await session.get(Account, row.account_id)
    if account is None or account.status != "active":
        await tokens.revoke_family(session, row.family_id)
        await session.commit()
        raise invalid_grant()
    return await _issue(session, settings, keys, account, persona or "professional", row.family_id, scope)


async def client_grant(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    passwords: Passwords,
    credentials: tuple[str | None, str | None],
    scope: str | None,
) -> TokenResponse:
    """An integrator client's id and secret: a token that speaks for the client, not a
    persona, with the scopes asked for (all of the client's by default)."""
    client_id, secret = credentials
    if not client_id or secret is None:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    client = await session.get(Client, client_id)
    ok = await passwords.verify(secret, client.secret_hash if client else None)
    if not ok or client is None or client.revoked_at is not None:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    requested = set((scope or "").split()) or set(client.scopes)
    if not requested <= set(client.scopes):
        raise OAuthError("invalid_scope", "The client may not ask for that scope.")
    access = tokens.mint_access_token(
        keys,
        settings,
        subject=f"client:{client.id}",
        context=None,
        roles=[],
        scope=" ".join(sorted(requested)),
        client_id=client.id,
    )
    return TokenResponse(
        access_token=access, expires_in=settings.access_token_seconds, scope=" ".join(sorted(requested))
    )


async def exchange_grant(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    provider: ExternalProvider | None,
    *,
    subject_token: str | None,
    subject_token_type: str | None,
    persona: str | None,
    scope: str | None = None,
) -> TokenResponse:
    """An ID token of the trusted single sign-on provider, linked to an active account by the
    configured claim; signing in this way takes the account over (oidc.adopt)."""
    if provider is None:
        raise OAuthError("unsupported_grant_type", "No single sign-on provider is configured.")
    if not subject_token or subject_token_type != ID_TOKEN_TYPE:
        raise OAuthError(
            "invalid_request", f"subject_token with subject_token_type {ID_TOKEN_TYPE} is required."
        )
    try:
        value = await provider.verify(subject_token)
    except ExternalTokenError:
        raise invalid_grant() from None
    if settings.oidc_link_claim == "email":
        query = select(Account).where(col(Account.email) == value.strip().lower())
    else:
        query = select(Account).where(col(Account.external_id) == value)
    account = await session.scalar(query)
    if account is None or account.status != "active":
        raise invalid_grant()
    await oidc.adopt(session, account)
    return await _issue(session, settings, keys, account, persona or "professional", scope=scope)
