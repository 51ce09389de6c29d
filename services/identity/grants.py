"""Signing in: the OAuth 2.0 grants the token endpoint accepts (authorization code with PKCE,
password, refresh token, client credentials, and the exchange of a single sign-on ID token),
each ending in our own tokens, the errors they answer with (RFC 6749 §5.2), and the metadata
that tells clients so (RFC 8414, OpenID discovery).

An app's grant (decision 0035) is bound to the app, to the persona chosen at consent and to the
scopes granted: its access tokens name the app (``azp``) and carry the scopes, which every
service enforces (domain/principal.py); refreshing it keeps all three, and only the app that
holds it may refresh it. The password grant's families are not bound and switch persona.

A persona held by moderation signs in only with ``scope=notices`` (decision 0032): its token
carries that scope and no role, moderation takes it on the persona's notices alone, and every
other check refuses it (identity's own, and feed's and groups', which see the persona
suspended)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import APP_SCOPES, NOTICES_SCOPE
from kit.errors import APIError, TooManyRequests
from kit.timeutil import as_utc, utcnow
from services.identity import apps, credentials, oidc, personas, tokens
from services.identity.keys import KeyRing
from services.identity.models import Account, App, AuthorizationCode, Client, Persona, RefreshToken
from services.identity.oidc import ExternalProvider, ExternalTokenError
from services.identity.passwords import Passwords
from services.identity.schemas import TokenResponse
from services.identity.settings import IdentitySettings

AUTHORIZATION_CODE = "authorization_code"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN, not a secret


class OAuthError(APIError):
    """An RFC 6749 §5.2 error, carried in a problem document's ``error`` member."""

    status, title, slug = 400, "Bad Request", "oauth"

    def __init__(
        self, error: str, description: str, status: int = 400, params: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description, params=params, extra={"error": error})
        self.extra["error_description"] = self.detail  # English: RFC 6749 wants ASCII there
        self.status = status
        if status == 401:
            self.title = "Unauthorized"
            self.headers["WWW-Authenticate"] = 'Basic realm="token"'


def invalid_grant() -> OAuthError:
    return OAuthError("invalid_grant", "The credentials or the refresh token are not valid.")


def invalid_client() -> OAuthError:
    return OAuthError("invalid_client", "Client authentication failed.", status=401)


def invalid_code(description: str = "The code is not valid, has expired or was used.") -> OAuthError:
    return OAuthError("invalid_grant", description)


def enabled_grants(settings: IdentitySettings, provider: ExternalProvider | None) -> list[str]:
    """The grant types the token endpoint accepts with these settings: what it answers
    ``unsupported_grant_type`` to, and what discovery lists."""
    enabled = [AUTHORIZATION_CODE, "refresh_token", "client_credentials"]
    if settings.password_grant:
        enabled.append("password")
    if provider is not None:
        enabled.append(TOKEN_EXCHANGE)
    return enabled


def unsupported_grant(settings: IdentitySettings, provider: ExternalProvider | None) -> OAuthError:
    return OAuthError(
        "unsupported_grant_type",
        "Supported: {grants}.",
        params={"grants": ", ".join(enabled_grants(settings, provider))},
    )


def server_metadata(settings: IdentitySettings, provider: ExternalProvider | None) -> dict[str, Any]:
    """The authorization server's metadata (RFC 8414), also served as the OpenID discovery
    document. The issuer is the tokens' ``iss``; every endpoint is named under the address
    clients reach the suite at (``public_url``, the gateway's) when it is set."""
    base = (settings.public_url or settings.token_issuer).rstrip("/")
    return {
        "issuer": settings.token_issuer,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/api/v1/auth/token",
        "revocation_endpoint": f"{base}/api/v1/auth/revoke",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": enabled_grants(settings, provider),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(APP_SCOPES),
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": True,
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["pairwise"],
        "claims_supported": ["sub", "ctx", "scope", "roles", "azp", "iss", "aud", "exp", "iat", "jti"],
    }


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
    raise OAuthError("invalid_request", "This account has no {kind} persona.", params={"kind": persona.kind})


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
        raise OAuthError("invalid_request", "This account has no {kind} persona.", params={"kind": kind})
    granted = _persona_scope(persona, scope)
    roles = [] if granted else account.roles
    return await _answer(session, settings, keys, account, persona, roles, scope=granted, family_id=family_id)


async def _answer(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    account: Account,
    persona: Persona,
    roles: list[str],
    *,
    scope: str,
    family_id: uuid.UUID | None,
    app: App | None = None,
    grant_scope: str = "",
) -> TokenResponse:
    """The token endpoint's answer for ``persona``: an access token with ``roles`` and
    ``scope`` (naming ``app`` when an app holds the grant), and a refresh token of a new family
    or of ``family_id``, bound, for an app, to the app, the persona and the whole
    ``grant_scope``; committed."""
    access = tokens.mint_access_token(
        keys,
        settings,
        subject=str(persona.id),
        context=persona.kind,
        roles=roles,
        scope=scope,
        app_id=app.id if app is not None else None,
    )
    bound = app is not None
    refresh = await tokens.issue_refresh_token(
        session,
        settings,
        account,
        family_id,
        app_id=app.id if app is not None else None,
        persona_id=persona.id if bound else None,
        scope=grant_scope,
    )
    await session.commit()
    return TokenResponse(
        access_token=access,
        expires_in=settings.access_token_seconds,
        refresh_token=refresh,
        scope=scope,
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
    try:
        account = await credentials.authenticate(
            session, settings, passwords, address=address, username=username, password=password
        )
    except credentials.Refused as refused:
        if refused.retry_after is not None:
            raise TooManyRequests(
                "Too many failed sign-ins; try again later.", retry_after=refused.retry_after
            ) from None
        raise invalid_grant() from None
    return await _issue(session, settings, keys, account, persona or "professional", scope=scope)


async def refresh_grant(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    passwords: Passwords,
    *,
    refresh_token: str | None,
    persona: str | None,
    scope: str | None = None,
    client: tuple[str | None, str | None] = (None, None),
) -> TokenResponse:
    """A refresh token, rotated on every use (a reused one revokes its whole family). One of
    the password grant optionally switches to the account's other persona; an app's stays
    with its app, persona and scopes (``_refresh_app_grant``)."""
    if not refresh_token:
        raise OAuthError("invalid_request", "refresh_token is required.")
    found = await tokens.find_refresh_token(session, refresh_token)
    if found is not None and found.app_id is not None:
        return await _refresh_app_grant(
            session, settings, keys, passwords, found, persona=persona, scope=scope, client=client
        )
    row = await tokens.consume(session, found)
    if row is None:
        await session.commit()  # keeps a family revocation
        raise invalid_grant()
    account = await session.get(Account, row.account_id)
    if account is None or account.status != "active":
        await tokens.revoke_family(session, row.family_id)
        await session.commit()
        raise invalid_grant()
    return await _issue(session, settings, keys, account, persona or "professional", row.family_id, scope)


async def _refresh_app_grant(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    passwords: Passwords,
    row: RefreshToken,
    *,
    persona: str | None,
    scope: str | None,
    client: tuple[str | None, str | None],
) -> TokenResponse:
    """Only the app holding the grant refreshes it (a confidential one with its secret), for the
    persona chosen at consent, with the scopes granted or fewer (RFC 6749 §6: the new refresh
    token keeps the whole grant; only the access token is narrowed). A request that fails
    these checks does not use the token up; a token used already revokes its family whoever
    sends it."""
    if row.used_at is not None or client[0] != row.app_id:
        if row.used_at is not None:
            await tokens.consume(session, row)  # a replay: revokes the family
            await session.commit()
        raise invalid_grant()
    app = await _authenticated_app(session, passwords, client)
    bound = await session.get(Persona, row.persona_id) if row.persona_id is not None else None
    if bound is None or (persona is not None and persona != bound.kind):
        raise invalid_grant()
    granted = set(row.scope.split())
    asked = set((scope or "").split())
    if not asked <= granted:
        raise OAuthError("invalid_scope", "A refresh may only narrow the scope granted.")
    if await tokens.consume(session, row) is None:
        await session.commit()  # keeps a family revocation
        raise invalid_grant()
    account = await session.get(Account, row.account_id)
    if account is None or account.status != "active" or bound.account_id != account.id:
        await tokens.revoke_family(session, row.family_id)
        await session.commit()
        raise invalid_grant()
    if personas.effective_status(bound) != "active":
        raise invalid_grant()  # not committed: the grant works again once the hold is lifted
    return await _issue_to_app(
        session,
        settings,
        keys,
        account,
        bound,
        app,
        family_id=row.family_id,
        scope=" ".join(sorted(asked or granted)),
        grant_scope=row.scope,
    )


async def _authenticated_app(
    session: AsyncSession, passwords: Passwords, client: tuple[str | None, str | None]
) -> App:
    """The active app of ``client_id``; a confidential one also proves its secret. A public
    app has none to prove (PKCE binds its codes to it); a secret it sends is ignored."""
    client_id, secret = client
    app = await apps.active_app(session, client_id)
    if app is None:
        raise invalid_client()
    if app.kind == "confidential":
        ok = await passwords.verify(secret or "", app.secret_hash)
        if not ok or not secret:
            raise invalid_client()
    return app


async def _issue_to_app(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    account: Account,
    persona: Persona,
    app: App,
    *,
    family_id: uuid.UUID,
    scope: str,
    grant_scope: str,
) -> TokenResponse:
    """An access token for ``persona`` naming ``app`` with ``scope``, and the next refresh
    token of the app's family, bound to the app, the persona and the whole ``grant_scope``. The
    app acts as the persona: a professional persona's token carries its account's roles, as the
    password grant's does, within the scopes."""
    return await _answer(
        session,
        settings,
        keys,
        account,
        persona,
        account.roles,
        scope=scope,
        family_id=family_id,
        app=app,
        grant_scope=grant_scope,
    )


async def authorization_code_grant(
    session: AsyncSession,
    settings: IdentitySettings,
    keys: KeyRing,
    passwords: Passwords,
    *,
    client: tuple[str | None, str | None],
    code: str | None,
    redirect_uri: str | None,
    code_verifier: str | None,
) -> TokenResponse:
    """A code the authorization endpoint gave an app (routes/oauth.py), redeemed once by that
    app, with the redirect URI it was given for and the PKCE verifier of its challenge. A code
    used twice was stolen or replayed: the grant its first use started is revoked (RFC 9700
    §4.5). The account and the persona must still be active when it is redeemed."""
    app = await _authenticated_app(session, passwords, client)
    if not code:
        raise OAuthError("invalid_request", "code is required.")
    row = await session.get(AuthorizationCode, tokens.digest(code))
    if row is None:
        raise invalid_code()
    if row.used_at is not None:
        await tokens.revoke_family(session, row.family_id)
        await session.commit()
        raise invalid_code()
    if as_utc(row.expires_at) <= utcnow() or row.app_id != app.id:
        raise invalid_code()
    if redirect_uri != row.redirect_uri:
        raise invalid_code("redirect_uri is not the one the code was given for.")
    if not apps.verifier_matches(code_verifier, row.code_challenge):
        raise invalid_code("code_verifier does not match the code's challenge.")
    used = await session.execute(
        update(AuthorizationCode)
        .where(col(AuthorizationCode.digest) == row.digest, col(AuthorizationCode.used_at).is_(None))
        .values(used_at=utcnow())
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        # another redemption won the race: whatever it issued is revoked
        await tokens.revoke_family(session, row.family_id)
        await session.commit()
        raise invalid_code()
    account = await session.get(Account, row.account_id)
    persona_row = await session.get(Persona, row.persona_id)
    if (
        account is None
        or account.status != "active"
        or persona_row is None
        or persona_row.account_id != account.id
        or personas.effective_status(persona_row) != "active"
    ):
        await session.commit()  # the code is used up all the same
        raise invalid_grant()
    return await _issue_to_app(
        session,
        settings,
        keys,
        account,
        persona_row,
        app,
        family_id=row.family_id,
        scope=row.scope,
        grant_scope=row.scope,
    )


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
            "invalid_request",
            "subject_token with subject_token_type urn:ietf:params:oauth:token-type:id_token is required.",
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
