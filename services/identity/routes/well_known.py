"""Published keys, and the authorization server's metadata under both names clients look for
it (RFC 8414 and OpenID discovery), built by one function (grants.server_metadata)."""

from __future__ import annotations

from fastapi import APIRouter

from services.identity import grants
from services.identity.deps import ExternalProviderDep, KeysDep, SettingsDep
from services.identity.schemas import AuthorizationServerMetadata, JsonWebKeySet

router = APIRouter(tags=["auth"])


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def get_jwks(keys: KeysDep) -> JsonWebKeySet:
    return JsonWebKeySet.model_validate(keys.jwks())


@router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery document")
async def get_openid_configuration(
    settings: SettingsDep, provider: ExternalProviderDep
) -> AuthorizationServerMetadata:
    """The same document as `/.well-known/oauth-authorization-server`."""
    return AuthorizationServerMetadata.model_validate(grants.server_metadata(settings, provider))


@router.get(
    "/.well-known/oauth-authorization-server", summary="OAuth 2.0 authorization server metadata (RFC 8414)"
)
async def get_authorization_server_metadata(
    settings: SettingsDep, provider: ExternalProviderDep
) -> AuthorizationServerMetadata:
    """Where apps sign people in (`authorization_endpoint`, with PKCE S256) and get tokens,
    and which grants, scopes and client authentication methods the token endpoint takes."""
    return AuthorizationServerMetadata.model_validate(grants.server_metadata(settings, provider))
