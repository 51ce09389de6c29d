"""Helpers for apps of the authorization-code flow: register one as an administrator does,
make a code as the authorization endpoint would once the person chose a persona (with
``apps.issue_code`` on identity's own database), and redeem it at the token endpoint."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx

from services.identity import apps
from services.identity.models import App, Persona
from tests.helpers import auth

TOKEN = "/api/v1/auth/token"
REDIRECT = "https://app.agency.example/callback"
VERIFIER = "v" * 43 + "-._~0123456789"


async def register_app(suite: Any, admin_token: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Agency app", "kind": "public", "redirect_uris": [REDIRECT], **fields}
    resp = await suite.client.post("/api/v1/admin/apps", json=body, headers=auth(admin_token))
    assert resp.status_code == 201, resp.text
    app: dict[str, Any] = resp.json()
    return app


async def issue_code(
    suite: Any,
    app_id: str,
    persona_id: str,
    *,
    redirect_uri: str = REDIRECT,
    verifier: str = VERIFIER,
    scope: str = "read write",
) -> str:
    """A code for ``persona_id``, as the consent page gives it to the app."""
    state = suite.identity.state
    async with state.database.sessionmaker() as session:
        app = await session.get(App, app_id)
        persona = await session.get(Persona, uuid.UUID(persona_id))
        assert app is not None and persona is not None
        code = apps.issue_code(
            session,
            state.settings,
            app=app,
            account_id=persona.account_id,
            persona_id=persona.id,
            redirect_uri=redirect_uri,
            code_challenge=apps.challenge_of(verifier),
            scope=scope,
        )
        await session.commit()
    return code


async def redeem(
    suite: Any,
    code: str,
    client_id: str | None,
    *,
    redirect_uri: str | None = REDIRECT,
    verifier: str | None = VERIFIER,
    secret: str | None = None,
    basic: bool = False,
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    if verifier is not None:
        data["code_verifier"] = verifier
    headers = {}
    if basic:
        pair = f"{client_id}:{secret or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    else:
        if client_id is not None:
            data["client_id"] = client_id
        if secret is not None:
            data["client_secret"] = secret
    response: httpx.Response = await suite.client.post(TOKEN, data=data, headers=headers)
    return response


async def refresh(suite: Any, token: str, client_id: str | None, **fields: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, **fields}
    if client_id is not None:
        data["client_id"] = client_id
    response: httpx.Response = await suite.client.post(TOKEN, data=data)
    return response


async def app_tokens(suite: Any, app_id: str, persona_id: str, **code: Any) -> dict[str, Any]:
    """An app's tokens for ``persona_id``, through a code."""
    resp = await redeem(suite, await issue_code(suite, app_id, persona_id, **code), app_id)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body
