"""Published keys and the OpenID discovery document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.identity.deps import KeysDep, SettingsDep

router = APIRouter(tags=["auth"])


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def get_jwks(keys: KeysDep) -> dict[str, Any]:
    return keys.jwks()


@router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery document")
async def get_openid_configuration(settings: SettingsDep) -> dict[str, Any]:
    issuer = settings.token_issuer.rstrip("/")
    return {
        "issuer": settings.token_issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/api/v1/auth/token",
        "revocation_endpoint": f"{issuer}/api/v1/auth/revoke",
        "grant_types_supported": ["password", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["pairwise"],
        "response_types_supported": ["token"],
        "claims_supported": ["sub", "ctx", "scope", "roles", "iss", "aud", "exp", "iat", "jti"],
    }
