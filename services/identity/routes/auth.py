"""``POST /api/v1/auth/token`` (OAuth 2.0 form) and ``POST /api/v1/auth/revoke`` (RFC 7009)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Form
from sqlmodel import select

from kit.db import SessionDep
from kit.errors import APIError
from services.identity import tokens
from services.identity.deps import KeysDep, PasswordsDep, SettingsDep
from services.identity.models import Account, RefreshToken
from services.identity.schemas import TokenResponse

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


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


@router.post(
    "/token",
    summary="Obtain a persona-scoped access token",
    response_model_exclude_none=True,
    responses={400: {"description": "OAuth error (`error` member: invalid_grant, ...)"}},
)
async def create_token(
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    passwords: PasswordsDep,
    grant_type: Annotated[str, Form(max_length=40)],
    username: Annotated[str | None, Form(max_length=254)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    persona: Annotated[Literal["professional", "personal"] | None, Form()] = None,
    scope: Annotated[str | None, Form(max_length=500)] = None,
) -> TokenResponse:
    """`grant_type=password` with `username` (the email), `password` and `persona`
    (professional by default); `grant_type=refresh_token` with `refresh_token` and
    optionally `persona` to switch face. The refresh token rotates on every use."""
    if grant_type == "password":
        if not username or password is None:
            raise OAuthError("invalid_request", "username and password are required.")
        account = await session.scalar(select(Account).where(Account.email == username.strip().lower()))
        ok = await passwords.verify(password, account.password_hash if account else None)
        if not ok or account is None or account.status != "active":
            raise _invalid_grant()
        return await _issue(session, settings, keys, account, persona or "professional")
    if grant_type == "refresh_token":
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is required.")
        row = await tokens.use_refresh_token(session, refresh_token)
        if row is None:
            await session.commit()  # keep a family revocation
            raise _invalid_grant()
        account = await session.get(Account, row.account_id)
        if account is None or account.status != "active":
            await tokens.revoke_family(session, row.family_id)
            await session.commit()
            raise _invalid_grant()
        return await _issue(session, settings, keys, account, persona or "professional", row.family_id)
    raise OAuthError("unsupported_grant_type", "Supported: password, refresh_token.")


@router.post("/revoke", summary="Revoke a refresh token and its family (RFC 7009)", status_code=200)
async def revoke_token(
    session: SessionDep,
    token: Annotated[str, Form(max_length=8192)],
    token_type_hint: Annotated[str | None, Form(max_length=40)] = None,
) -> dict[str, str]:
    """Always 200, whether or not the token was known (RFC 7009 §2.2)."""
    row = await session.scalar(select(RefreshToken).where(RefreshToken.digest == tokens.digest(token)))
    if row is not None:
        await tokens.revoke_family(session, row.family_id)
        await session.commit()
    return {"status": "revoked"}
