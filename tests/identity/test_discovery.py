"""The authorization server's metadata (RFC 8414, and the same document as OpenID discovery),
the grants it lists being the ones the token endpoint takes, and the password grant switched
off (decision 0035)."""

from __future__ import annotations

import pytest

from launcher.topology import DEFAULT_PORTS, Layout, environment
from services.identity.grants import TOKEN_EXCHANGE, server_metadata
from services.identity.settings import IdentitySettings
from tests.helpers import PASSWORD, register
from tests.suite import build_suite

DOCUMENTS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


async def _documents(client) -> list[dict]:
    found = []
    for path in DOCUMENTS:
        resp = await client.get(path)  # no token: discovery is public at the gateway
        assert resp.status_code == 200, (path, resp.text)
        found.append(resp.json())
    return found


async def test_both_documents_are_one_and_describe_the_code_flow(suite):
    oauth, openid = await _documents(suite.client)
    assert oauth == openid
    assert oauth["issuer"] == "http://identity"  # the tokens' iss
    assert oauth["authorization_endpoint"] == "http://identity/oauth/authorize"
    assert oauth["token_endpoint"] == "http://identity/api/v1/auth/token"
    assert oauth["revocation_endpoint"] == "http://identity/api/v1/auth/revoke"
    assert oauth["jwks_uri"] == "http://identity/.well-known/jwks.json"
    assert oauth["response_types_supported"] == ["code"]
    assert oauth["response_modes_supported"] == ["query"]
    assert oauth["code_challenge_methods_supported"] == ["S256"]
    assert oauth["scopes_supported"] == ["read", "write"]
    assert oauth["token_endpoint_auth_methods_supported"] == [
        "none",
        "client_secret_basic",
        "client_secret_post",
    ]
    assert oauth["authorization_response_iss_parameter_supported"] is True
    assert oauth["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "password",
    ]
    jwks = await suite.client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and jwks.json()["keys"]


async def test_endpoints_are_named_under_the_public_url_and_the_issuer_stays(database_urls):
    overrides = {"identity": {"public_url": "https://social.agency.example/"}}
    async with build_suite(database_urls, **overrides) as suite:
        oauth, openid = await _documents(suite.client)
    assert oauth == openid
    assert oauth["issuer"] == "http://identity"
    for name in ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "jwks_uri"):
        assert oauth[name].startswith("https://social.agency.example/"), name
        assert "//" not in oauth[name].removeprefix("https://"), name
    assert oauth["authorization_endpoint"] == "https://social.agency.example/oauth/authorize"


async def test_the_password_grant_switched_off_is_unsupported_and_unlisted(database_urls):
    async with build_suite(database_urls, identity={"password_grant": False}) as suite:
        email = await register(suite.client, "ada")  # registration itself needs no sign-in
        resp = await suite.client.post(
            "/api/v1/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
        )
        assert resp.status_code == 400
        body = resp.json()
        assert body["error"] == "unsupported_grant_type"
        assert (
            body["error_description"] == "Supported: authorization_code, refresh_token, client_credentials."
        )
        oauth, _ = await _documents(suite.client)
        assert "password" not in oauth["grant_types_supported"]
        assert "authorization_code" in oauth["grant_types_supported"]


async def test_an_unknown_grant_names_the_enabled_ones(suite):
    resp = await suite.client.post("/api/v1/auth/token", data={"grant_type": "implicit"})
    assert resp.status_code == 400
    assert resp.json()["error_description"] == (
        "Supported: authorization_code, refresh_token, client_credentials, password."
    )


async def test_token_exchange_is_listed_when_a_provider_is_configured(database_urls):
    provider = {
        "oidc_issuer": "https://sso.agency.example",
        "oidc_jwks_url": "http://sso/jwks",
        "oidc_audience": "govsocial",
    }
    async with build_suite(database_urls, identity=provider) as suite:
        oauth, _ = await _documents(suite.client)
    assert oauth["grant_types_supported"][-1] == TOKEN_EXCHANGE


@pytest.mark.parametrize("gateway_port", [8000, 18000])
def test_under_make_run_the_document_names_the_gateways_port(monkeypatch, gateway_port):
    ports = dict(DEFAULT_PORTS) | {"gateway": gateway_port}
    env = environment(Layout("127.0.0.1", ports), internal_token="t", var_dir="var")
    for name, value in env.items():
        if name.startswith("IDENTITY_"):
            monkeypatch.setenv(name, value)
    document = server_metadata(IdentitySettings(), None)
    gateway = f"http://127.0.0.1:{gateway_port}"
    assert document["issuer"] == f"http://127.0.0.1:{ports['identity']}"
    assert document["authorization_endpoint"] == f"{gateway}/oauth/authorize"
    assert document["token_endpoint"] == f"{gateway}/api/v1/auth/token"
    assert document["jwks_uri"] == f"{gateway}/.well-known/jwks.json"
