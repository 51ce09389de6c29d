"""``POST /api/v1/auth/token`` (OAuth 2.0 form) and ``POST /api/v1/auth/revoke`` (RFC 7009);
services/identity/grants.py holds the grants."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Form, Request

from domain.contexts import Context
from kit.service import documented_body
from services.identity import grants, throttle, tokens
from services.identity.deps import ExternalProviderDep, KeysDep, PasswordsDep, SessionDep, SettingsDep
from services.identity.schemas import TokenRequest, TokenResponse, TokenRevoked

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


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
    # The form's fields stay parameters (each grant checks its own); the document shows the
    # form as one shape per grant.
    openapi_extra=documented_body(TokenRequest, "application/x-www-form-urlencoded"),
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
    provider: ExternalProviderDep,
    grant_type: Annotated[str, Form(max_length=100)],
    code: Annotated[str | None, Form(max_length=200)] = None,
    redirect_uri: Annotated[str | None, Form(max_length=2000)] = None,
    code_verifier: Annotated[str | None, Form(max_length=128)] = None,
    username: Annotated[str | None, Form(max_length=254)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    persona: Annotated[Context | None, Form()] = None,
    scope: Annotated[str | None, Form(max_length=500)] = None,
    client_id: Annotated[str | None, Form(max_length=40)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    subject_token: Annotated[str | None, Form(max_length=16384)] = None,
    subject_token_type: Annotated[str | None, Form(max_length=100)] = None,
) -> TokenResponse:
    """- `authorization_code`: an app's `code` from `/oauth/authorize`, the same `redirect_uri`,
      the PKCE `code_verifier`, and the app's `client_id` (with `client_secret`, form or HTTP
      Basic, for a confidential app). A code works once; a second use revokes what the first
      one issued. The token speaks for the persona chosen at consent, within the scopes granted.
    - `password` (unless switched off, `IDENTITY_PASSWORD_GRANT`): `username` (the email),
      `password` and `persona` (professional by default). A persona suspended by moderation
      gets a token only with `scope=notices`: it reads the persona's notices and appeals,
      nothing else.
    - `refresh_token`: `refresh_token`; it rotates on every use, and a reused one revokes its
      whole family. A password sign-in's takes `persona` to switch face; an app's stays with
      its persona, takes the app's `client_id` (and secret) and may narrow `scope`.
    - `client_credentials`: an integrator client's `client_id` and `client_secret` (form or
      HTTP Basic) and optionally `scope`; the token speaks for the client, not a persona.
    - `urn:ietf:params:oauth:grant-type:token-exchange`: an ID token of the trusted single
      sign-on provider as `subject_token`, exchanged for our tokens."""
    if grant_type not in grants.enabled_grants(settings, provider):
        raise grants.unsupported_grant(settings, provider)
    client = _basic_credentials(request) or (client_id, client_secret)
    if grant_type == grants.AUTHORIZATION_CODE:
        return await grants.authorization_code_grant(
            session,
            settings,
            keys,
            passwords,
            client=client,
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
        )
    if grant_type == "password":
        return await grants.password_grant(
            session,
            settings,
            keys,
            passwords,
            address=throttle.client_address(request, settings),
            username=username,
            password=password,
            persona=persona,
            scope=scope,
        )
    if grant_type == "refresh_token":
        return await grants.refresh_grant(
            session,
            settings,
            keys,
            passwords,
            refresh_token=refresh_token,
            persona=persona,
            scope=scope,
            client=client,
        )
    if grant_type == "client_credentials":
        return await grants.client_grant(session, settings, keys, passwords, client, scope)
    if grant_type == grants.TOKEN_EXCHANGE:
        return await grants.exchange_grant(
            session,
            settings,
            keys,
            provider,
            subject_token=subject_token,
            subject_token_type=subject_token_type,
            persona=persona,
            scope=scope,
        )
    raise grants.unsupported_grant(settings, provider)


@router.post("/revoke", summary="Revoke a refresh token and its family (RFC 7009)", status_code=200)
async def revoke_token(
    session: SessionDep,
    token: Annotated[str, Form(min_length=1, max_length=8192)],
    token_type_hint: Annotated[str | None, Form(max_length=40)] = None,
) -> TokenRevoked:
    """Always 200, whether or not the token was known (RFC 7009 §2.2)."""
    await tokens.revoke(session, token)
    return TokenRevoked()
