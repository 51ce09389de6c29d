"""A stand-in for the organisation's OpenID Connect provider, run as a process of its own on
loopback for the single sign-on tests:

    uvicorn tests.identity.sso_provider:create_app --factory --port PORT

with SSO_ISSUER (its own address), SSO_CLIENT_ID and SSO_CLIENT_SECRET in the environment. Its
authorization endpoint signs in whoever the test planned (``PUT /_plan``) without a page and
sends the browser straight back with a code; its token endpoint checks what a real provider
checks (client_secret_post, the code once, the redirect URI, PKCE S256) and answers an ID token
signed with a key it made at start, published at ``/jwks``. ``GET /_seen`` lists the token
requests it received (without the secret). ``PUT /_plan`` may also make it misbehave: another
nonce, another audience, or an error instead of a code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from jose import jwt

from services.identity.keys import SigningKey


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def create_app() -> FastAPI:
    issuer = os.environ["SSO_ISSUER"]
    client_id = os.environ["SSO_CLIENT_ID"]
    secret = os.environ["SSO_CLIENT_SECRET"]
    key = SigningKey.generate()
    plan: dict[str, Any] = {}
    codes: dict[str, dict[str, Any]] = {}
    seen: list[dict[str, str]] = []
    app = FastAPI()

    @app.put("/_plan")
    async def set_plan(request: Request) -> dict[str, Any]:
        plan.clear()
        plan.update(await request.json())
        return plan

    @app.get("/_seen")
    async def get_seen() -> list[dict[str, str]]:
        return seen

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": [key.public_jwk]}

    @app.get("/authorize")
    async def authorize(request: Request) -> RedirectResponse:
        q = request.query_params
        assert q["client_id"] == client_id and q["response_type"] == "code"
        assert q["code_challenge_method"] == "S256" and q["scope"] == "openid email"
        back = {"state": q["state"]}
        if plan.get("error"):
            back["error"] = plan["error"]
        else:
            code = secrets.token_urlsafe(16)
            codes[code] = {
                "email": plan["email"],
                "nonce": plan.get("nonce", q["nonce"]),
                "aud": plan.get("aud", client_id),
                "challenge": q["code_challenge"],
                "redirect_uri": q["redirect_uri"],
            }
            back["code"] = code
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(back)}", status_code=302)

    @app.post("/token")
    async def token(
        grant_type: str = Form(),
        code: str = Form(),
        redirect_uri: str = Form(),
        client_id_: str = Form(alias="client_id"),
        client_secret: str = Form(),
        code_verifier: str = Form(),
    ) -> JSONResponse:
        seen.append({"grant_type": grant_type, "client_id": client_id_, "redirect_uri": redirect_uri})
        grant = codes.pop(code, None)
        refused = (
            grant is None
            or grant_type != "authorization_code"
            or client_id_ != client_id
            or not hmac.compare_digest(client_secret, secret)
            or redirect_uri != grant["redirect_uri"]
            or _challenge(code_verifier) != grant["challenge"]
        )
        if refused or grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": grant["aud"],
            "sub": str(uuid.uuid4()),
            "email": grant["email"],
            "email_verified": True,
            "nonce": grant["nonce"],
            "iat": now,
            "exp": now + 300,
        }
        id_token = jwt.encode(claims, key.signer, algorithm="RS256", headers={"kid": key.kid})
        return JSONResponse({"access_token": "unused", "token_type": "Bearer", "id_token": id_token})

    return app
