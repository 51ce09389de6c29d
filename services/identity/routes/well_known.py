"""Published keys, and the authorization server's metadata under both names clients look for
it (RFC 8414 and OpenID discovery), built by one function (grants.server_metadata)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.identity import grants
from services.identity.deps import ExternalProviderDep, KeysDep, SettingsDep

router = APIRouter(tags=["auth"])


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def get_jwks(keys: KeysDep) -> dict[str, Any]:
    return keys.jwks()


@router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery document")
async def get_openid_configuration(settings: SettingsDep, provider: ExternalProviderDep) -> dict[str, Any]:
    """The same document as `/.well-known/oauth-authorization-server`."""
    return grants.server_metadata(settings, provider)


@router.get(
    "/.well-known/oauth-authorization-server", summary="OAuth 2.0 authorization server metadata (RFC 8414)"
)
async def get_authorization_server_metadata(
    settings: SettingsDep, provider: ExternalProviderDep
) -> dict[str, Any]:
    """Where apps sign people in (`authorization_endpoint`, with PKCE S256) and get tokens,
    and which grants, scopes and client authentication methods the token endpoint takes."""
    return grants.server_metadata(settings, provider)
