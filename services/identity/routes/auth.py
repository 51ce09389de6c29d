"""``POST /api/v1/auth/token`` (OAuth 2.0 form) and ``POST /api/v1/auth/revoke`` (RFC 7009)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from sqlalchemy import select

from kit.db import SessionDep
from kit.errors import APIError, TooManyRequests
from services.identity import oidc, throttle, tokens
from services.identity.deps import KeysDep, PasswordsDep, SettingsDep
from services.identity.models import Account, Client, RefreshToken
from services.identity.oidc import ExternalTokenError
from services.identity.schemas import TokenResponse

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

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


def _invalid_grant() -> OAuthError:
    return OAuthError("invalid_grant", "The credentials or the refresh token are not valid.")


async def _issue(
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    account: Account,
    kind: str,
    family_id: uuid.UUID | None = None,
) -> TokenResponse:
    persona = await tokens.persona_of_kind(session, account.id, kind)
    if persona is None or persona.status != "active":
        raise OAuthError("invalid_request", f"This account has no {kind} persona.")
    access = tokens.mint_access_token(
        keys, settings, subject=str(persona.id), context=persona.kind, roles=account.roles
    )
    refresh = await tokens.issue_refresh_token(session, settings, account, family_id)
    await session.commit()
    return TokenResponse(
        access_token=access,
        expires_in=settings.access_token_seconds,
        refresh_token=refresh,
        persona_id=persona.id,
        context=persona.kind,
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


@router.post(
    "/token",
    summary="Obtain an access token",
    response_model_exclude_none=True,
    responses={
        400: {
            "description": "OAuth error (`error`: invalid_grant, invalid_request, unsupported_grant_type, …)"
        },
        401: {"description": "Unknown client or wrong client secret (`error`: invalid_client)"},
        429: {"description": "Too many failed sign-ins; see Retry-After"},
    },
)
async def create_token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    passwords: PasswordsDep,
    grant_type: Annotated[str, Form(max_length=100)],
    username: Annotated[str | None, Form(max_length=254)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    persona: Annotated[Literal["professional", "personal"] | None, Form()] = None,
    scope: Annotated[str | None, Form(max_length=500)] = None,
    client_id: Annotated[str | None, Form(max_length=40)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    subject_token: Annotated[str | None, Form(max_length=16384)] = None,
    subject_token_type: Annotated[str | None, Form(max_length=100)] = None,
) -> TokenResponse:
    """- `password`: `username` (the email), `password` and `persona` (professional by default).
    - `refresh_token`: `refresh_token`, optionally `persona` to switch face; it rotates on every
      use, and a reused one revokes its whole family.
    - `client_credentials`: an integrator client's `client_id` and `client_secret` (form or
      HTTP Basic) and optionally `scope`; the token speaks for the client, not a persona.
    - `urn:ietf:params:oauth:grant-type:token-exchange`: an ID token of the trusted single
      sign-on provider as `subject_token`, exchanged for our tokens."""
    if grant_type == "password":
        return await _password_grant(request, session, settings, keys, passwords, username, password, persona)
    if grant_type == "refresh_token":
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is required.")
        row = await tokens.use_refresh_token(session, refresh_token)
        if row is None:
            await session.commit()  # keeps a family revocation
            raise _invalid_grant()
        account = await session.get(Account, row.account_id)
        if account is None or account.status != "active":
            await tokens.revoke_family(session, row.family_id)
            await session.commit()
            raise _invalid_grant()
        return await _issue(session, settings, keys, account, persona or "professional", row.family_id)
    if grant_type == "client_credentials":
        credentials = _basic_credentials(request) or (client_id, client_secret)
        return await _client_grant(session, settings, keys, passwords, credentials, scope)
    if grant_type == TOKEN_EXCHANGE:
        return await _exchange_grant(
            request, session, settings, keys, subject_token, subject_token_type, persona
        )
    raise OAuthError(
        "unsupported_grant_type", f"Supported: password, refresh_token, client_credentials, {TOKEN_EXCHANGE}."
    )


async def _password_grant(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    passwords: PasswordsDep,
    username: str | None,
    password: str | None,
    persona: str | None,
) -> TokenResponse:
    if not username or password is None:
        raise OAuthError("invalid_request", "username and password are required.")
    keys_ = throttle.keys_for(username, throttle.client_address(request, settings))
    wait = await throttle.retry_after(session, keys_)
    if wait is not None:
        raise TooManyRequests("Too many failed sign-ins; try again later.", retry_after=wait)
    account = await session.scalar(select(Account).where(Account.email == username.strip().lower()))  # type: ignore[arg-type]
    ok = await passwords.verify(password, account.password_hash if account else None)
    if not ok or account is None or account.status != "active":
        await throttle.record_failure(session, keys_, settings)
        raise _invalid_grant()
    if await throttle.account_locked(session, keys_):
        raise _invalid_grant()  # a distributed attack locked the account: say nothing more
    await throttle.record_success(session, keys_)
    return await _issue(session, settings, keys, account, persona or "professional")


async def _client_grant(
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    passwords: PasswordsDep,
    credentials: tuple[str | None, str | None],
    scope: str | None,
) -> TokenResponse:
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


async def _exchange_grant(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    subject_token: str | None,
    subject_token_type: str | None,
    persona: str | None,
) -> TokenResponse:
    provider = request.app.state.external_provider
    if provider is None:
        raise OAuthError("unsupported_grant_type", "No single sign-on provider is configured.")
    if not subject_token or subject_token_type != ID_TOKEN_TYPE:
        raise OAuthError(
            "invalid_request", f"subject_token with subject_token_type {ID_TOKEN_TYPE} is required."
        )
    try:
        value = await provider.verify(subject_token)
    except ExternalTokenError:
        raise _invalid_grant() from None
    if settings.oidc_link_claim == "email":
        query = select(Account).where(Account.email == value.strip().lower())
    else:
        query = select(Account).where(Account.external_id == value)
    account = await session.scalar(query)
    if account is None or account.status != "active":
        raise _invalid_grant()
    await oidc.adopt(session, account)
    return await _issue(session, settings, keys, account, persona or "professional")


@router.post("/revoke", summary="Revoke a refresh token and its family (RFC 7009)", status_code=200)
async def revoke_token(
    session: SessionDep,
    token: Annotated[str, Form(min_length=1, max_length=8192)],
    token_type_hint: Annotated[str | None, Form(max_length=40)] = None,
) -> dict[str, str]:
    """Always 200, whether or not the token was known (RFC 7009 §2.2)."""
    row = await session.scalar(select(RefreshToken).where(RefreshToken.digest == tokens.digest(token)))  # type: ignore[arg-type]
    if row is not None:
        await tokens.revoke_family(session, row.family_id)
        await session.commit()
    return {"status": "revoked"}
