"""kit.tokens knows tokens, not what they stand for: the verifier hands a token's checked claims
to the function it was given, caches that answer per token, and answers 401 when the function
refuses the claims."""

from __future__ import annotations

from typing import Any

import pytest

from kit.errors import Unauthorized
from kit.tokens import TokenVerifier, VerifiedClaims
from services.identity.keys import SigningKey
from tests.suite import AUDIENCE, ISSUER
from tests.tokens import claims, sign

KEY = SigningKey.generate()


class OneKey:
    """The test's key source: one key, known by its ``kid``."""

    async def key_for(self, kid: str) -> dict[str, Any] | None:
        return KEY.public_jwk if kid == KEY.kid else None


def verifier(principal: Any) -> TokenVerifier[Any]:
    return TokenVerifier(OneKey(), issuer=ISSUER, audience=AUDIENCE, principal=principal)


async def test_the_verified_claims_reach_the_principal_function_whole():
    payload = claims(ctx=None, roles=None, scope=None, anything="else")
    verified = await verifier(lambda checked: checked).verify(sign(KEY, payload))
    assert isinstance(verified, VerifiedClaims)
    assert verified.subject == payload["sub"]
    assert verified.token_id == payload["jti"]
    assert (verified.issued_at, verified.expires_at) == (payload["iat"], payload["exp"])
    assert verified.claims["anything"] == "else"


async def test_each_token_is_answered_once_then_from_the_cache():
    seen: list[str] = []

    def principal(checked: VerifiedClaims) -> str:
        seen.append(checked.token_id)
        return checked.subject

    check = verifier(principal)
    token = sign(KEY, claims())
    assert await check.verify(token) == await check.verify(token)
    assert len(seen) == 1


@pytest.mark.parametrize("error", [ValueError, TypeError, KeyError])
async def test_claims_the_principal_function_refuses_make_the_token_invalid(error):
    def principal(_checked: VerifiedClaims) -> None:
        raise error("no")

    with pytest.raises(Unauthorized) as refused:
        await verifier(principal).verify(sign(KEY, claims()))
    assert refused.value.detail == "The bearer token is not valid."
